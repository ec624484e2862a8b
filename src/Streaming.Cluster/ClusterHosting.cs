using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Orleans.Configuration;
using Orleans.Serialization;
using Orleans.Storage;
using Streaming.Core;

namespace Streaming.Cluster;

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

/// <summary>The silo's ports and the address it advertises.</summary>
public sealed record SiloEndpoints(int SiloPort = 11111, int GatewayPort = 30000, IPAddress? Advertise = null);

/// <summary>How silos and clients of the engine's cluster are configured: one place for clustering, storage and identity.</summary>
public static class ClusterHosting
{
    public const string StorageName = "cluster";
    public const string ClusterId = "streaming";
    public const string ServiceId = "streaming";

    /// <summary>A silo: membership and state from <paramref name="connection"/>, listening on <paramref name="endpoints"/>.</summary>
    public static void ConfigureSilo(ISiloBuilder silo, ClusterConnection connection, SiloEndpoints endpoints)
    {
        silo.Configure<ClusterOptions>(o =>
        {
            o.ClusterId = ClusterId;
            o.ServiceId = ServiceId;
        });
        var address = endpoints.Advertise ?? (connection.RemoteDatabase ? RoutableAddress() : IPAddress.Loopback);
        if (connection.IsLocalhost)
        {
            silo.UseLocalhostClustering(endpoints.SiloPort, endpoints.GatewayPort, null, ServiceId, ClusterId);
            AddFolderStorage(silo, connection.StateFolder!);
        }
        else
        {
            silo.UseAdoNetClustering(o =>
            {
                o.Invariant = "Npgsql";
                o.ConnectionString = connection.Postgres;
            });
            silo.AddAdoNetGrainStorage(StorageName, ob => ob.Configure<Serializer>((o, serializer) =>
            {
                o.Invariant = "Npgsql";
                o.ConnectionString = connection.Postgres;
                o.GrainStorageSerializer = new OrleansGrainStorageSerializer(serializer);
            }));
            silo.ConfigureEndpoints(address, endpoints.SiloPort, endpoints.GatewayPort, listenOnAnyHostAddress: !address.Equals(IPAddress.Loopback));
        }
        ConfigureFailureDetection(silo.Services);
    }

    /// <summary>Grain state in a folder (<see cref="FolderGrainStorage"/>): the localhost cluster and in-process tests.</summary>
    public static void AddFolderStorage(ISiloBuilder silo, string folder) =>
        silo.Services.AddKeyedSingleton<IGrainStorage>(StorageName, (sp, _) => new FolderGrainStorage(folder, sp.GetRequiredService<Serializer>()));

    /// <summary>
    /// A dead silo (kill -9, lost network) is declared dead within about 10 s rather than Orleans' default of about a
    /// minute, so that its grains come back elsewhere soon; leases expire on their own clock either way.
    /// </summary>
    public static void ConfigureFailureDetection(IServiceCollection services)
    {
        services.Configure<ClusterMembershipOptions>(o =>
        {
            o.ProbeTimeout = TimeSpan.FromSeconds(2);
            o.NumMissedProbesLimit = 2;
            o.NumVotesForDeathDeclaration = 1;
            o.DeathVoteExpirationTimeout = TimeSpan.FromSeconds(30);
            o.IAmAliveTablePublishTimeout = TimeSpan.FromSeconds(5);
        });
        // A call to a silo that died before it was declared dead waits this long, not Orleans' default 30 s.
        services.Configure<SiloMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromSeconds(10));
    }

    /// <summary>A client of the cluster (the submitter, <c>cluster status</c>, the daemon).</summary>
    public static void ConfigureClient(IClientBuilder client, ClusterConnection connection, int gatewayPort = 30000)
    {
        client.Configure<ClusterOptions>(o =>
        {
            o.ClusterId = ClusterId;
            o.ServiceId = ServiceId;
        });
        if (connection.IsLocalhost) client.UseLocalhostClustering(gatewayPort, ServiceId, ClusterId);
        else
            client.UseAdoNetClustering(o =>
            {
                o.Invariant = "Npgsql";
                o.ConnectionString = connection.Postgres;
            });
        // A killed silo's gateway takes a few seconds to be known dead; calls through it are retried meanwhile.
        client.Configure<GatewayOptions>(o => o.GatewayListRefreshPeriod = TimeSpan.FromSeconds(5));
        client.Configure<ClientMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromSeconds(10));
    }

    /// <summary>Keeps Orleans' own logs to warnings (its information lines would drown the engine's).</summary>
    public static void QuietLogs(ILoggingBuilder logging)
    {
        logging.AddFilter("Orleans", LogLevel.Warning);
        logging.AddFilter("Microsoft", LogLevel.Warning);
        logging.AddFilter("Polly", LogLevel.Warning);
        logging.AddFilter("Orleans.Runtime.Watchdog", LogLevel.Error);
        logging.AddFilter("Orleans.Runtime.Silo", LogLevel.Error);
        logging.AddFilter("Orleans.Runtime.NoOpHostEnvironmentStatistics", LogLevel.Error);
    }

    /// <summary>This machine's first up, non-loopback IPv4 address (what other machines reach it by).</summary>
    public static IPAddress RoutableAddress() =>
        NetworkInterface.GetAllNetworkInterfaces()
            .Where(n => n.OperationalStatus == OperationalStatus.Up && n.NetworkInterfaceType != NetworkInterfaceType.Loopback)
            .SelectMany(n => n.GetIPProperties().UnicastAddresses)
            .Select(a => a.Address)
            .FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a)) ?? IPAddress.Loopback;

    /// <summary>A TCP port nothing listens on now.</summary>
    public static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>Retries a grain call that failed because its silo died (until Orleans moves the grain), up to <paramref name="patience"/>.</summary>
    public static async Task<T> RetryAsync<T>(Func<Task<T>> call, TimeSpan patience, CancellationToken cancellationToken, ILogger? log = null, string? what = null)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                return await call().ConfigureAwait(false);
            }
            catch (Exception e) when (Transient(e) && clock.Elapsed < patience && !cancellationToken.IsCancellationRequested)
            {
                if (attempt == 1 || attempt % 10 == 0) log?.LogWarning("{What}: {Error}; trying again", what ?? "a cluster call", e.Message);
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(2000, 200 * attempt)), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Errors of a cluster in motion, worth a retry: a silo died, a gateway is gone, the database restarts (grain storage
    /// then fails in the grain, and the caller sees whatever the provider threw, wrapped or not). Not: a cancellation,
    /// or the engine's own one-line errors.
    /// </summary>
    public static bool Transient(Exception e) => e is not (OperationCanceledException or StreamingException or ArgumentException);
}

/// <summary>
/// Grain state as files in one folder, one a grain, written atomically (fsync, rename) with Orleans' own serializer,
/// with an ETag check so that two activations cannot overwrite each other. For the one-process localhost cluster and
/// in-process tests; a real cluster keeps its state in PostgreSQL.
/// </summary>
public sealed class FolderGrainStorage(string folder, Serializer serializer) : IGrainStorage
{
    private readonly SemaphoreSlim _gate = new(1, 1);

    private string PathOf(string stateName, GrainId grainId) =>
        Path.Combine(folder, $"{stateName}-{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(grainId.ToString())))[..24]}.bin");

    public async Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        string path = PathOf(stateName, grainId);
        if (!File.Exists(path))
        {
            grainState.RecordExists = false;
            grainState.ETag = null;
            return;
        }
        var bytes = await File.ReadAllBytesAsync(path).ConfigureAwait(false);
        grainState.State = serializer.Deserialize<T>(bytes);
        grainState.ETag = Convert.ToHexStringLower(SHA256.HashData(bytes))[..16];
        grainState.RecordExists = true;
    }

    public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        string path = PathOf(stateName, grainId);
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            Directory.CreateDirectory(folder);
            if (File.Exists(path))
            {
                string etag = Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(path).ConfigureAwait(false)))[..16];
                if (etag != grainState.ETag) throw new InconsistentStateException($"{path}: written by another activation", etag, grainState.ETag ?? "");
            }
            var bytes = serializer.SerializeToArray(grainState.State);
            AtomicFile.Write(path, s => s.Write(bytes));
            grainState.ETag = Convert.ToHexStringLower(SHA256.HashData(bytes))[..16];
            grainState.RecordExists = true;
        }
        finally
        {
            _gate.Release();
        }
    }

    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        File.Delete(PathOf(stateName, grainId));
        grainState.ETag = null;
        grainState.RecordExists = false;
        return Task.CompletedTask;
    }
}

/// <summary>Orleans' ADO.NET tables and queries in a PostgreSQL database: created the first time a worker or client meets an empty one.</summary>
public static class ClusterSchema
{
    private static readonly string[] Scripts = ["PostgreSQL-Main.sql", "PostgreSQL-Clustering.sql", "PostgreSQL-Persistence.sql"];

    /// <summary>Creates the tables unless they exist; several processes starting at once take turns (an advisory lock).</summary>
    public static async Task EnsureAsync(ClusterConnection connection, CancellationToken cancellationToken = default)
    {
        if (connection.Postgres is null) return;
        await using var db = new NpgsqlConnection(connection.Postgres);
        try
        {
            await db.OpenAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or SocketException)
        {
            throw new StreamingException($"--cluster {connection}: cannot connect to PostgreSQL ({e.Message})");
        }
        await using (var lockCommand = new NpgsqlCommand("SELECT pg_advisory_lock(861700417)", db))
            await lockCommand.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await using var probe = new NpgsqlCommand("SELECT to_regclass('orleansstorage') IS NOT NULL AND to_regclass('orleansmembershiptable') IS NOT NULL", db);
            if ((bool)(await probe.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!) return;
            // All three in one transaction: a failure halfway leaves nothing behind to trip the next start.
            await using var transaction = await db.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            foreach (var script in Scripts)
            {
                await using var stream = typeof(ClusterSchema).Assembly.GetManifestResourceStream(script) ?? throw new InvalidOperationException($"{script} is not embedded");
                using var reader = new StreamReader(stream);
                await using var command = new NpgsqlCommand(await reader.ReadToEndAsync(cancellationToken).ConfigureAwait(false), db, transaction);
                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await using var unlock = new NpgsqlCommand("SELECT pg_advisory_unlock(861700417)", db);
            await unlock.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }
}
