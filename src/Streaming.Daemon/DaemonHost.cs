using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Streaming.Daemon;

/// <summary>
/// Builds and runs the daemon: a generic host (SIGTERM and SIGINT stop it gracefully) with the worker and,
/// unless <c>http.listen: off</c>, Kestrel serving <c>/metrics</c>, <c>/healthz</c>, <c>/readyz</c> and <c>/status</c>.
/// </summary>
public static class DaemonHost
{
    public const string InfoFile = "daemon.json";

    /// <summary>The live dashboard served at <c>/</c> (Dashboard/index.html, embedded: no file, no CDN).</summary>
    private static readonly Lazy<string> Dashboard = HttpListen.EmbeddedPage("dashboard.html");

    /// <summary>Runs until stopped; returns 0 after a clean stop, 3 when the daemon could not run (the log says why).</summary>
    public static async Task<int> RunAsync(DaemonConfig config, CancellationToken cancellationToken = default)
    {
        var listen = config.ParseListen();
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        ConfigureLogging(builder.Logging, config.JsonLogs);
        builder.Services.Configure<HostOptions>(o =>
        {
            o.ShutdownTimeout = config.ShutdownTimeout;
            o.BackgroundServiceExceptionBehavior = BackgroundServiceExceptionBehavior.StopHost;
        });
        builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);
        var status = new DaemonStatus();
        builder.Services.AddSingleton(config);
        builder.Services.AddSingleton(status);
        builder.Services.AddHostedService<DaemonWorker>();
        if (listen is var (address, port))
            builder.WebHost.UseKestrel(k => HttpListen.Bind(k, address, port));
        else
            builder.WebHost.UseSetting(WebHostDefaults.ServerUrlsKey, "");

        var app = builder.Build();
        if (listen is not null) MapEndpoints(app, config, status, config.ReadToken());
        await StartAsync(app, config, status, listen is not null, cancellationToken).ConfigureAwait(false);
        await app.WaitForShutdownAsync(cancellationToken).ConfigureAwait(false);
        await app.DisposeAsync().ConfigureAwait(false);
        return status.Fatal is null ? 0 : 3;
    }

    /// <summary>One line an event on the console: text or JSON (<c>log.format</c>).</summary>
    private static void ConfigureLogging(ILoggingBuilder logging, bool json)
    {
        logging.ClearProviders();
        if (json)
            logging.AddJsonConsole(o =>
            {
                o.JsonWriterOptions = new JsonWriterOptions { Indented = false };
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
                o.UseUtcTimestamp = true;
                o.IncludeScopes = false;
            });
        else
            logging.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "yyyy-MM-dd HH:mm:ss ";
                o.UseUtcTimestamp = true;
                o.ColorBehavior = LoggerColorBehavior.Disabled;
            });
        logging.SetMinimumLevel(LogLevel.Information);
        logging.AddFilter("Microsoft", LogLevel.Warning);
    }

    /// <summary>
    /// The endpoints: /healthz and /readyz say nothing but ok or not (for probes); /status, /metrics and /dhat need the token
    /// when there is one; / is the dashboard, a page with no data of its own (it polls /status, sending the token it is given after '#').
    /// </summary>
    private static void MapEndpoints(WebApplication app, DaemonConfig config, DaemonStatus status, string? token)
    {
        bool Allowed(HttpContext http) => token is null || Authorization.Matches(http.Request.Headers.Authorization.ToString(), token);
        IResult Unauthorized() => Results.Text("a bearer token is required (http.token_file)\n", statusCode: 401);
        app.MapGet("/", () => Results.Text(Dashboard.Value, "text/html; charset=utf-8"));
        app.MapGet("/metrics", (HttpContext http) => Allowed(http) ? Results.Text(status.Metrics(), "text/plain; version=0.0.4; charset=utf-8") : Unauthorized());
        app.MapGet("/healthz", () => status.Health() is var (healthy, text) && healthy ? Results.Text(text + "\n") : Results.Text(text + "\n", statusCode: 503));
        app.MapGet("/readyz", () => status.Ready && status.Degraded is null && status.Health().Healthy ? Results.Text("ready\n")
            : Results.Text($"not ready{(status.Degraded is string d ? $": {d}" : "")}\n", statusCode: 503));
        app.MapGet("/status", (HttpContext http) => Allowed(http) ? Results.Json(status.StatusObject(), new JsonSerializerOptions { WriteIndented = true }) : Unauthorized());
        // The dashboard's contact sheet: a class's images in the latest snapshot at ranks 1, 10, 100, 1,000, and each image.
        var sheet = new DhatSheet(new DaemonPaths(config.State), status);
        app.MapGet("/dhat", async (HttpContext http, int? @class, CancellationToken ct) =>
        {
            if (!Allowed(http)) return Unauthorized();
            var (data, why) = await sheet.SheetAsync(@class ?? 0, ct).ConfigureAwait(false);
            return data is null ? Results.Text(why + "\n", statusCode: 404) : Results.Json(data, new JsonSerializerOptions { WriteIndented = true });
        });
        app.MapGet("/dhat/image", async (HttpContext http, int @class, int rank, int version, CancellationToken ct) =>
        {
            if (!Allowed(http)) return Unauthorized();
            var (png, why) = await sheet.ImageAsync(@class, rank, version, ct).ConfigureAwait(false);
            return png is null ? Results.Text(why + "\n", statusCode: 404) : Results.Bytes(png, "image/png");
        });
    }

    /// <summary>Starts the host, then says where it serves (the log and <c>daemon.json</c>, a note for tools).</summary>
    private static async Task StartAsync(WebApplication app, DaemonConfig config, DaemonStatus status, bool serving, CancellationToken cancellationToken)
    {
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            throw new Core.StreamingException($"http.listen {config.Listen}: cannot listen there ({e.Message})");
        }
        var log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("streaming.http");
        if (serving)
        {
            var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
            status.HttpAddress = addresses.FirstOrDefault();
            log.LogInformation("serving the dashboard (/) and /metrics /healthz /readyz /status /dhat on {Address}", status.HttpAddress);
        }
        try
        {
            Directory.CreateDirectory(config.State);
            string info = Path.Combine(config.State, InfoFile);
            Core.AtomicFile.WriteAllText(info, JsonSerializer.Serialize(new { pid = Environment.ProcessId, http = status.HttpAddress, started_utc = DateTime.UtcNow }) + "\n");
        }
        catch (IOException e)
        {
            // Only a note for tools (the address and pid); a full disk must not stop the daemon, which waits for room.
            log.LogWarning("{File} not written: {Error}", InfoFile, e.Message);
        }
    }
}

/// <summary>Bearer-token checks for the daemon's endpoints.</summary>
internal static class Authorization
{
    /// <summary>Whether an Authorization header carries <paramref name="token"/>, compared in constant time.</summary>
    public static bool Matches(string header, string token)
    {
        const string scheme = "Bearer ";
        if (!header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)) return false;
        var given = System.Text.Encoding.UTF8.GetBytes(header[scheme.Length..].Trim());
        var expected = System.Text.Encoding.UTF8.GetBytes(token);
        return System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(given, expected);
    }
}
