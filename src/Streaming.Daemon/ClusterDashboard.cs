using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Streaming.Cluster.Client;

namespace Streaming.Daemon;

/// <summary>
/// <c>cluster status --serve</c>: a live page of the cluster at <c>/</c> (its silos, jobs with their progress, and
/// each job's workers, and images/s over the last hour) and <c>/status</c>, the <c>cluster status --json</c> document
/// with <c>rate_history</c> and <c>updated_utc</c> added, behind the token when there is one, as the daemon's are.
/// </summary>
public static class ClusterDashboard
{
    private static readonly TimeSpan SampleEvery = TimeSpan.FromSeconds(10), Fresh = TimeSpan.FromSeconds(1);

    private static readonly Lazy<string> Page = HttpListen.EmbeddedPage("cluster-dashboard.html");

    /// <summary>Serves until <paramref name="cancellationToken"/> fires or the process gets SIGTERM; returns 0.</summary>
    public static async Task<int> RunAsync(Func<Task<ClusterStatusReport>> collect, (IPAddress? Address, int Port) listen, string? token, Action<string> log,
        CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => HttpListen.Bind(k, listen.Address, listen.Port));
        var app = builder.Build();
        var state = new Sampler(collect);
        bool Allowed(HttpContext http) => token is null || Authorization.Matches(http.Request.Headers.Authorization.ToString(), token);
        app.MapGet("/", () => Results.Text(Page.Value, "text/html; charset=utf-8"));
        app.MapGet("/healthz", () => Results.Text("ok\n"));
        app.MapGet("/status", async (HttpContext http) =>
        {
            if (!Allowed(http)) return Results.Text("a bearer token is required (--token-file)\n", statusCode: 401);
            var (doc, error) = await state.CurrentAsync().ConfigureAwait(false);
            return doc is null ? Results.Text($"the cluster does not answer: {error}\n", statusCode: 503)
                : Results.Text(doc.ToJsonString(new JsonSerializerOptions { WriteIndented = true }), "application/json; charset=utf-8");
        });
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            throw new Core.StreamingException($"--serve: cannot listen at {listen.Address?.ToString() ?? "localhost"}:{listen.Port} ({e.Message})");
        }
        string address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault() ?? "?";
        log($"cluster dashboard: {address}/ (status: {address}/status; Ctrl-C stops it)");
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, app.Lifetime.ApplicationStopping);
        var sampling = state.SampleAsync(log, stop.Token);
        await app.WaitForShutdownAsync(cancellationToken).ConfigureAwait(false);
        await stop.CancelAsync().ConfigureAwait(false);
        await sampling.ConfigureAwait(false);
        await app.DisposeAsync().ConfigureAwait(false);
        return 0;
    }

    /// <summary>The latest document (asked again when older than a second) and the hour of images/s, a point every 10 s.</summary>
    private sealed class Sampler(Func<Task<ClusterStatusReport>> collect)
    {
        private readonly SemaphoreSlim _gate = new(1, 1);
        private readonly Queue<(DateTime T, double Rate)> _history = new();
        private ClusterStatusReport? _last;
        private DateTime _lastAt = DateTime.MinValue, _lastTry = DateTime.MinValue;
        private string? _error;

        public async Task<(JsonObject? Doc, string? Error)> CurrentAsync()
        {
            await _gate.WaitAsync().ConfigureAwait(false);
            try
            {
                // At most one attempt a second, answered or not: pages polling a cluster that is down must not pile up calls.
                if (DateTime.UtcNow - _lastTry > Fresh) await RefreshAsync().ConfigureAwait(false);
                if (_last is null) return (null, _error);
                var doc = _last.ToJson();
                var now = DateTime.UtcNow;
                doc["updated_utc"] = _lastAt;
                doc["error"] = _error;
                doc["rate_history"] = new JsonArray([.. _history.Select(h => (JsonNode)new JsonObject
                {
                    ["seconds_ago"] = Math.Round((now - h.T).TotalSeconds, 1), ["images_per_second"] = Math.Round(h.Rate, 1),
                })]);
                return (doc, null);
            }
            finally
            {
                _gate.Release();
            }
        }

        public async Task SampleAsync(Action<string> log, CancellationToken stop)
        {
            string? said = null;
            while (!stop.IsCancellationRequested)
            {
                await _gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
                try
                {
                    await RefreshAsync().ConfigureAwait(false);
                    if (_error is null && _last is not null)
                    {
                        _history.Enqueue((_lastAt, _last.Jobs.Where(j => !j.Finished).Sum(j => j.ImagesPerSecond)));
                        while (_history.Count > 0 && DateTime.UtcNow - _history.Peek().T > TimeSpan.FromHours(1)) _history.Dequeue();
                    }
                    if (_error != said && _error is not null) log($"cluster dashboard: the cluster does not answer ({_error}); trying again");
                    said = _error;
                }
                finally
                {
                    _gate.Release();
                }
                try
                {
                    await Task.Delay(SampleEvery, stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }

        private async Task RefreshAsync()
        {
            _lastTry = DateTime.UtcNow;
            try
            {
                _last = await collect().WaitAsync(TimeSpan.FromSeconds(15)).ConfigureAwait(false);
                _lastAt = DateTime.UtcNow;
                _error = null;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                _error = e.Message;
            }
        }
    }
}
