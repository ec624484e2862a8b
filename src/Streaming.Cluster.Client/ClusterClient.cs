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
        builder.UseOrleansClient(client => Configure(client, connection, gatewayPort));
        return builder.Build();
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
