using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Orleans.Configuration;
using Streaming.Core;

namespace Streaming.Cluster.Client;

/// <summary>A client of the engine's cluster (the submitter, <c>cluster status</c>, the daemon): its identity, configuration, logs and retries.</summary>
public static class ClusterClient
{
    public const string ClusterId = "streaming";
    public const string ServiceId = "streaming";

    /// <summary>A client of the cluster (it hosts no grains).</summary>
    public static IHost Build(ClusterConnection connection, int gatewayPort = 30000, Action<ILoggingBuilder>? logging = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = [], ContentRootPath = AppContext.BaseDirectory, DisableDefaults = true });
        ConfigureLogging(builder.Logging, logging);
        // A failed start is reported by StartAsync, in one line.
        builder.Logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.None);
        builder.UseOrleansClient(client => Configure(client, connection, gatewayPort));
        var host = builder.Build();
        if (connection.Tls is { } tls) tls.Log = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("streaming.tls");
        return host;
    }

    /// <summary>A client of the cluster (the submitter, <c>cluster status</c>, the daemon).</summary>
    public static void Configure(IClientBuilder client, ClusterConnection connection, int gatewayPort = 30000)
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
        connection.RequireTlsBeyondLoopback("client");
        if (connection.Tls is { } tls) client.UseTls(tls.Certificate, o => tls.Configure(o, "client"));
        client.UseConnectionRetryFilter(new ConnectRetry().ShouldRetryAsync);
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

    /// <summary>One line an event on stderr (stdout is for results), Orleans' own lines kept to warnings.</summary>
    public static void ConfigureLogging(ILoggingBuilder logging, Action<ILoggingBuilder>? more)
    {
        logging.ClearProviders();
        logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "yyyy-MM-dd HH:mm:ss ";
            o.UseUtcTimestamp = true;
            o.ColorBehavior = LoggerColorBehavior.Disabled;
        });
        // Logs go to stderr: stdout is for results (and --json).
        logging.Services.Configure<ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        logging.SetMinimumLevel(LogLevel.Information);
        QuietLogs(logging);
        more?.Invoke(logging);
    }
    /// <summary>
    /// Starts a client built by <see cref="Build"/>: gateways not up yet are waited for (up to a minute), a gateway that
    /// refuses this client's TLS (or its lack of it) ends the start at the third try, in one line.
    /// </summary>
    public static async Task StartAsync(IHost host, ClusterConnection connection, CancellationToken cancellationToken)
    {
        try
        {
            await host.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested && e is not StreamingException)
        {
            throw new StreamingException(ConnectRetry.TlsRefused(e)
                ? $"the cluster's gateways refused this client: the TLS handshake failed ({(connection.Tls is null ? "this client gave no --tls-cert, and the cluster runs mutual TLS" : "the gateways and this client do not share a CA, or the cluster runs without TLS")}): {Innermost(e)}"
                : $"could not connect to the cluster's gateways ({connection}): {Innermost(e)}");
        }
    }

    private static string Innermost(Exception e)
    {
        while (e.InnerException is { } inner) e = inner;
        return e.Message;
    }

    /// <summary>The client's connection attempts at start: a TLS refusal three times, anything else for a minute.</summary>
    private sealed class ConnectRetry
    {
        private static readonly TimeSpan Patience = TimeSpan.FromMinutes(1);
        private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
        private int _tlsFailures, _attempts;

        public async Task<bool> ShouldRetryAsync(Exception e, CancellationToken cancellationToken)
        {
            if (TlsRefused(e) && ++_tlsFailures >= 3) return false;
            if (_clock.Elapsed > Patience) return false;
            await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(5000, 500 * ++_attempts)), cancellationToken).ConfigureAwait(false);
            return true;
        }

        /// <summary>Whether a failed connection was a TLS handshake refused (by either side): what Orleans reports then.</summary>
        public static bool TlsRefused(Exception e)
        {
            string text = e.ToString();
            return text.Contains("Connection initialization failed", StringComparison.Ordinal)
                || text.Contains("Connection terminated prematurely", StringComparison.Ordinal)
                || text.Contains("AuthenticationException", StringComparison.Ordinal);
        }
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
