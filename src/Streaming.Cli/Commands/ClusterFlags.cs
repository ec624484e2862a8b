using System.CommandLine;
using Streaming.Cluster.Client;

namespace Streaming.Cli.Commands;

/// <summary>How a command reaches the cluster: <c>--cluster</c>, mutual TLS (<c>--tls-cert</c>, <c>--tls-key</c>, <c>--tls-ca</c>) and <c>--insecure</c>.</summary>
internal sealed class ClusterFlags(bool required = true)
{
    public Option<string> Cluster { get; } = new("--cluster")
    {
        Description = "The cluster: 'localhost' (one process, no database), a PostgreSQL connection string (Host=...;Username=...;Database=...; with 'SSL Mode=VerifyFull;Root Certificate=ca.pem' for TLS to the database), or file:PATH holding one (keeps the password off the command line)",
        Required = required,
    };

    public Option<string?> TlsCert { get; } = new("--tls-cert") { Description = "This node's certificate (PEM), signed by the cluster's CA: mutual TLS between silos, workers and clients" };
    public Option<string?> TlsKey { get; } = new("--tls-key") { Description = "This node's private key (PEM)" };
    public Option<string?> TlsCa { get; } = new("--tls-ca") { Description = "The cluster's CA certificate (PEM): only nodes with a certificate it signed are admitted" };
    public Option<bool> Insecure { get; } = new("--insecure") { Description = "Allow a cluster beyond loopback without TLS (anyone who reaches its ports can join, submit and read)" };

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { Cluster, TlsCert, TlsKey, TlsCa, Insecure }) command.Options.Add(option);
    }

    /// <summary>The connection the flags give (null without --cluster); <paramref name="localState"/> holds a localhost cluster's state.</summary>
    public ClusterConnection? Bind(ParseResult parse, string localState) => parse.GetValue(Cluster) is string text
        ? ClusterConnection.Parse(text, localState) with
        {
            Tls = ClusterTls.From(parse.GetValue(TlsCert), parse.GetValue(TlsKey), parse.GetValue(TlsCa)),
            Insecure = parse.GetValue(Insecure),
        }
        : null;
}
