using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Orleans.Configuration;
using Streaming.Engine.Scoring;

namespace Streaming.Cluster;

/// <summary>Builds the processes of a cluster: a worker silo (grains and the scoring worker) and a client.</summary>
public static class ClusterNode
{
    /// <summary>A silo hosting the grains and, unless <paramref name="worker"/> is null, a scoring worker.</summary>
    public static IHost BuildSilo(ClusterConnection connection, SiloEndpoints endpoints, WorkerOptions? worker, ITeacherSource? teachers = null,
        Action<ILoggingBuilder>? logging = null, TimeSpan? shutdownTimeout = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = [], ContentRootPath = AppContext.BaseDirectory, DisableDefaults = true });
        ConfigureLogging(builder.Logging, logging);
        builder.Services.Configure<HostOptions>(o =>
        {
            o.ShutdownTimeout = shutdownTimeout ?? TimeSpan.FromSeconds(60);
            o.BackgroundServiceExceptionBehavior = BackgroundServiceExceptionBehavior.StopHost;
        });
        builder.UseOrleans(silo =>
        {
            ClusterHosting.ConfigureSilo(silo, connection, endpoints);
            if (worker is not null)
            {
                AddWorker(silo.Services, worker, teachers);
                silo.Configure<SiloOptions>(o => o.SiloName = worker.Id);
            }
        });
        return builder.Build();
    }

    /// <summary>The scoring worker, as a hosted service of a silo.</summary>
    public static void AddWorker(IServiceCollection services, WorkerOptions worker, ITeacherSource? teachers = null)
    {
        services.AddSingleton(worker);
        services.AddSingleton(teachers ?? FileTeacherSource.Instance);
        services.AddSingleton<ScoringWorker>();
        services.AddHostedService(sp => sp.GetRequiredService<ScoringWorker>());
    }

    /// <summary>A client of the cluster (it hosts no grains).</summary>
    public static IHost BuildClient(ClusterConnection connection, int gatewayPort = 30000, Action<ILoggingBuilder>? logging = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = [], ContentRootPath = AppContext.BaseDirectory, DisableDefaults = true });
        ConfigureLogging(builder.Logging, logging);
        builder.UseOrleansClient(client => ClusterHosting.ConfigureClient(client, connection, gatewayPort));
        return builder.Build();
    }

    private static void ConfigureLogging(ILoggingBuilder logging, Action<ILoggingBuilder>? more)
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
        ClusterHosting.QuietLogs(logging);
        more?.Invoke(logging);
    }
}
