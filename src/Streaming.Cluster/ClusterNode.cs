using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Orleans.Configuration;
using Streaming.Engine.Scoring;
using Streaming.Cluster.Client;

namespace Streaming.Cluster;

/// <summary>Builds the processes of a cluster: a worker silo (grains and the scoring worker) and a client.</summary>
public static class ClusterNode
{
    /// <summary>A silo hosting the grains and, unless <paramref name="worker"/> is null, a scoring worker.</summary>
    public static IHost BuildSilo(ClusterConnection connection, SiloEndpoints endpoints, WorkerOptions? worker, ITeacherSource? teachers = null,
        Action<ILoggingBuilder>? logging = null, TimeSpan? shutdownTimeout = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = [], ContentRootPath = AppContext.BaseDirectory, DisableDefaults = true });
        ClusterClient.ConfigureLogging(builder.Logging, logging);
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
        var host = builder.Build();
        if (connection.Tls is { } tls) tls.Log = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("streaming.tls");
        return host;
    }

    /// <summary>The scoring worker, as a hosted service of a silo.</summary>
    public static void AddWorker(IServiceCollection services, WorkerOptions worker, ITeacherSource? teachers = null)
    {
        services.AddSingleton(worker);
        services.AddSingleton(teachers ?? FileTeacherSource.Instance);
        services.AddSingleton<ScoringWorker>();
        services.AddHostedService(sp => sp.GetRequiredService<ScoringWorker>());
    }

}
