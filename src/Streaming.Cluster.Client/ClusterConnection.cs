using Npgsql;
using Streaming.Core;

namespace Streaming.Cluster.Client;

/// <summary>
/// Where a cluster keeps its membership and grain state: <c>localhost</c> (Orleans' localhost clustering in one
/// process, state in a folder: for trying it out) or a PostgreSQL connection string (Orleans' ADO.NET clustering and
/// grain storage, for many machines).
/// </summary>
public sealed record ClusterConnection
{
    /// <summary>The PostgreSQL connection string; null for localhost.</summary>
    public string? Postgres { get; private init; }

    /// <summary>For localhost: the folder that holds the grain state.</summary>
    public string? StateFolder { get; private init; }

    public bool IsLocalhost => Postgres is null;

    /// <summary>Mutual TLS for the silos' and gateways' connections (null: none, for loopback only unless <see cref="Insecure"/>).</summary>
    public ClusterTls? Tls { get; init; }

    /// <summary>Allow a cluster beyond loopback without TLS (<c>--insecure</c>): anyone who reaches its ports can join it.</summary>
    public bool Insecure { get; init; }

    /// <summary>
    /// Refuses, in one line, to take part in a cluster beyond loopback (its database elsewhere, or <paramref name="address"/>
    /// not a loopback one) without TLS, unless <see cref="Insecure"/> says to.
    /// </summary>
    public void RequireTlsBeyondLoopback(string who, System.Net.IPAddress? address = null)
    {
        if (Tls is not null || Insecure) return;
        bool beyond = RemoteDatabase || (address is not null && !System.Net.IPAddress.IsLoopback(address));
        if (!beyond) return;
        string where = address is not null && !System.Net.IPAddress.IsLoopback(address) ? $"it would listen beyond loopback and advertise {address}" : $"its cluster is beyond loopback ({this})";
        throw new StreamingException($"{who}: {where} without TLS, where anyone who reaches its ports could join or call it; give --tls-cert, --tls-key and --tls-ca ('streaming cluster certs' makes them), or --insecure to mean it");
    }

    /// <summary>Parses <c>--cluster</c>: <c>localhost</c>, a PostgreSQL connection string (<c>Host=...;Username=...</c>), or <c>file:PATH</c> holding one.</summary>
    public static ClusterConnection Parse(string text, string localStateFolder)
    {
        // file:PATH: the connection string from a file, so that its password is not on a command line (ps shows those).
        // (Not @PATH: the command line reads that as a response file.)
        if (text.StartsWith("file:", StringComparison.Ordinal))
        {
            string file = text["file:".Length..];
            if (!File.Exists(file)) throw new StreamingException($"--cluster {text}: {file} not found");
            text = File.ReadAllText(file).Trim();
        }
        if (string.Equals(text.Trim(), "localhost", StringComparison.OrdinalIgnoreCase))
            return new ClusterConnection { StateFolder = Path.GetFullPath(localStateFolder) };
        try
        {
            var builder = new NpgsqlConnectionStringBuilder(text);
            if (string.IsNullOrEmpty(builder.Host)) throw new ArgumentException("no Host");
            return new ClusterConnection { Postgres = builder.ConnectionString };
        }
        catch (ArgumentException e)
        {
            // Not the text itself: it may hold a password.
            throw new StreamingException($"--cluster: neither 'localhost', 'file:PATH' nor a PostgreSQL connection string such as 'Host=db;Port=5432;Username=orleans;Password=...;Database=streaming' ({e.Message})");
        }
    }

    /// <summary>The connection string without its password, for logs.</summary>
    public override string ToString()
    {
        if (Postgres is null) return $"localhost (state in {StateFolder})";
        var b = new NpgsqlConnectionStringBuilder(Postgres) { Password = null };
        return $"postgres {b.Host}:{b.Port}/{b.Database}";
    }

    /// <summary>The PostgreSQL host, when it is not this machine: workers then advertise a routable address.</summary>
    public bool RemoteDatabase => Postgres is not null && new NpgsqlConnectionStringBuilder(Postgres).Host is string h && h is not ("localhost" or "127.0.0.1" or "::1") && !h.StartsWith('/');
}
