using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.RegularExpressions;
using Streaming.Cluster;
using Streaming.Core.Ingest;
using Streaming.Models.Training;
using Xunit;

namespace Streaming.Tests;

/// <summary>
/// <c>cluster status --serve</c> (issue 21): the cluster's live page, in Debian's chromium, while a real worker process
/// scores a job submitted with <c>score --cluster</c> on a PostgreSQL cluster of the test's own.
/// </summary>
[Collection(nameof(ProcessState))]
public class ClusterDashboardTests : IAsyncLifetime
{
    private const string Token = "cluster-dashboard-token-0123";
    private readonly TempDir _tmp = new();
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(30) };

    public async ValueTask InitializeAsync()
    {
        await Ingestor.RunAsync(ImageSource.Open(TestPaths.MiniTar), _tmp.Sub("u"), new IngestOptions { Writer = new() { ShardSize = 20 } });
        // Two threads, as every in-process training here: after a run on one thread, a later one on two in the same
        // process no longer matches a fresh process bit for bit (found by ResumeTests.Kill9_ThenResume_GivesBitIdenticalWeights).
        await Trainer.RunAsync(new TrainOptions { Data = _tmp.Sub("u"), Arch = "cnn-small", Out = _tmp.Sub("teacher"), Images = 64, BatchSize = 32, Threads = 2 });
    }

    public ValueTask DisposeAsync()
    {
        _tmp.Dispose();
        return ValueTask.CompletedTask;
    }

    [Fact]
    public async Task ClusterStatusServe_InChromium_ShowsTheJobAndItsWorker_AsStatusSays_AndLogsNoError()
    {
        await using var pg = await TempPostgres.StartAsync(_tmp.Sub("pg"));
        string conn = pg.ConnectionString;
        File.WriteAllText(_tmp.Sub("token"), Token);
        var worker = CliProcess.StartLogged(_tmp.Sub("worker.log"), "worker", "--cluster", conn, "--silo-port", ClusterHosting.FreePort().ToString(CultureInfo.InvariantCulture),
            "--gateway-port", ClusterHosting.FreePort().ToString(CultureInfo.InvariantCulture), "--name", "cw0", "--decode-workers", "1");
        Process? server = null;
        try
        {
            await Until(() => File.Exists(_tmp.Sub("worker.log")) && File.ReadAllText(_tmp.Sub("worker.log")).Contains(" ready "), "the worker to start");
            server = CliProcess.StartLogged(_tmp.Sub("server.log"), "cluster", "status", "--cluster", conn, "--serve", "127.0.0.1:0", "--token-file", _tmp.Sub("token"));
            string address = "";
            await Until(() => File.Exists(_tmp.Sub("server.log"))
                && Regex.Match(File.ReadAllText(_tmp.Sub("server.log")), @"cluster dashboard: (http://\S+)/ ") is { Success: true } m && (address = m.Groups[1].Value).Length > 0,
                "the dashboard's address");
            Assert.Equal(HttpStatusCode.Unauthorized, (await Http.GetAsync(address + "/status")).StatusCode);

            var (code, output) = await CliProcess.RunAsync("score", "--teacher", _tmp.Sub("teacher"), "--data", _tmp.Sub("u"), "--out", _tmp.Sub("scored"),
                "--top-p", "3", "--batch", "16", "--threads", "1", "-k", "10", "-p", "1", "--cluster", conn);
            Assert.True(code == 0, output);

            await using var browser = await BrowserPage.OpenAsync($"{address}/#token={Token}");
            var page = browser.Page;
            await page.WaitForFunctionAsync("() => Array.from(document.querySelectorAll('#job_rows td')).some(td => td.textContent === 'finished')", null, new() { Timeout = 60_000 });
            await page.WaitForFunctionAsync("n => Number(document.body.dataset.polls) > n", Convert.ToInt32(await page.EvaluateAsync<string>("document.body.dataset.polls")), new() { Timeout = 10_000 });

            using var request = new HttpRequestMessage(HttpMethod.Get, address + "/status");
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Token);
            using var response = await Http.SendAsync(request);
            using var status = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            var job = status.RootElement.GetProperty("jobs").EnumerateArray().Single();
            Assert.Equal(15, job.GetProperty("shards").GetInt32()); // 300 images in shards of 20
            Assert.Equal(15, job.GetProperty("done").GetInt32());
            Assert.Equal("15", await page.InnerTextAsync("#shards_done"));
            Assert.Equal("15", await page.InnerTextAsync("#shards_total"));
            Assert.Equal(status.RootElement.GetProperty("silos").GetArrayLength().ToString(CultureInfo.InvariantCulture), await page.InnerTextAsync("#silos"));
            Assert.Contains("cw0", await page.InnerTextAsync("#silo_rows"));
            // The one worker did every shard: its row's cells are job, worker, leased, shards, ...
            var cells = await page.EvaluateAsync<string[]>("() => Array.from(document.querySelectorAll('#worker_rows tr:first-child td')).map(td => td.textContent)");
            Assert.Equal(("cw0", "0", "15", "300"), (cells[1], cells[2], cells[3], cells[4]));
            Assert.Contains(job.GetProperty("key").GetString()![..12], await page.InnerTextAsync("#job_rows"));
            Assert.True(status.RootElement.GetProperty("rate_history").GetArrayLength() >= 1);
            Assert.True(await page.EvaluateAsync<int>(DaemonTests.HasColour, new object[] { "rate", 0x25, 0x63, 0xeb }) > 0, "the rate chart is blank");
            Assert.Equal("100%", await page.EvaluateAsync<string>("() => document.querySelector('#job_rows .bar > div').style.width"));
            Assert.Empty(browser.Errors);
            string shot = await browser.ScreenshotAsync("cluster-dashboard.png", fullPage: true);
            Assert.True(new FileInfo(shot).Length > 10_000);

            // SIGTERM stops the server cleanly.
            using (var kill = Process.Start("kill", ["-TERM", server.Id.ToString(CultureInfo.InvariantCulture)])) await kill!.WaitForExitAsync();
            using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30))) await server.WaitForExitAsync(timeout.Token);
            Assert.Equal(0, server.ExitCode);
        }
        catch (Exception e) when (e is not Xunit.Sdk.XunitException)
        {
            string Tail(string name) => File.Exists(_tmp.Sub(name)) ? string.Join("\n", File.ReadLines(_tmp.Sub(name)).TakeLast(25)) : "(none)";
            throw new InvalidOperationException($"{e.Message}\n--- worker.log\n{Tail("worker.log")}\n--- server.log\n{Tail("server.log")}", e);
        }
        finally
        {
            foreach (var p in new[] { worker, server })
                if (p is { HasExited: false }) p.Kill();
        }
    }

    private static async Task Until(Func<bool> done, string what, int seconds = 60)
    {
        var clock = Stopwatch.StartNew();
        while (!done())
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(seconds)) throw new TimeoutException($"waited {seconds} s for {what}");
            await Task.Delay(200);
        }
    }
}
