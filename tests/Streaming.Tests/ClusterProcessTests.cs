using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Streaming.Cluster;
using Streaming.Cluster.Client;
using Streaming.Core.Ingest;
using Streaming.Core.Selection;
using Streaming.Models.Training;
using Xunit;

namespace Streaming.Tests;

/// <summary>
/// The cluster as users run it (issue 19): PostgreSQL of its own, 3 <c>streaming worker</c> processes scoring
/// Fashion-MNIST's 10,000 test images (100 shards) with a resnet20 teacher, submitted with <c>score --cluster</c>. In
/// mid-job a worker and the submitting client are killed with SIGKILL, PostgreSQL is restarted and a second worker is
/// stopped with SIGTERM; the job completes when the client attaches again, and its score shards and D-hat are
/// byte-identical to a one-machine <c>score</c> with the same batch, threads and kernels.
/// </summary>
[Collection(nameof(ProcessState))]
public class ClusterProcessTests : IAsyncLifetime
{
    private readonly TempDir _tmp = new();
    private string Unlabeled => _tmp.Sub("u");
    private string Teacher => _tmp.Sub("teacher");

    public async ValueTask InitializeAsync()
    {
        Prerequisite.FashionMnist.Require();
        Prerequisite.PostgreSql.Require();
        await Ingestor.RunAsync(ImageSource.Open(TestPaths.FashionMnistTest), Unlabeled, new IngestOptions { Writer = new() { ShardSize = 100 } });
        await Ingestor.RunAsync(ImageSource.Open(TestPaths.MiniTar), _tmp.Sub("d"), new IngestOptions { Writer = new() { ShardSize = 100 } });
        await Trainer.RunAsync(new TrainOptions { Data = _tmp.Sub("d"), Arch = "resnet20", Out = Teacher, Images = 32 * 4, BatchSize = 32, Threads = 2 });
    }

    public ValueTask DisposeAsync()
    {
        _tmp.Dispose();
        return ValueTask.CompletedTask;
    }

    private string[] ScoreArgs(string output, params string[] more) =>
        ["score", "--teacher", Teacher, "--data", Unlabeled, "--out", output, "--top-p", "5", "--batch", "16", "--threads", "1", "-k", "50", "-p", "2", .. more];

    [Fact]
    public async Task KillNineAWorkerAndTheClient_RestartPostgres_SigtermAWorker_TheJobCompletes_ByteIdenticalToOneMachine()
    {
        string local = _tmp.Sub("local"), remote = _tmp.Sub("remote");
        var (code, output) = await CliProcess.RunAsync(ScoreArgs(local));
        Assert.True(code == 0, output);

        await using var pg = await TempPostgres.StartAsync(_tmp.Sub("pg"));
        string conn = pg.ConnectionString;
        var workers = new Process[3];
        var gateways = new int[3];
        for (int i = 0; i < 3; i++)
        {
            gateways[i] = ClusterHosting.FreePort();
            workers[i] = CliProcess.StartLogged(_tmp.Sub($"w{i}.log"), "worker", "--cluster", conn, "--silo-port", ClusterHosting.FreePort().ToString(CultureInfo.InvariantCulture),
                "--gateway-port", gateways[i].ToString(CultureInfo.InvariantCulture), "--name", $"w{i}", "--decode-workers", "1", "--prefetch", "2", "--partial-every", "8");
        }
        var client = CliProcess.StartLogged(_tmp.Sub("client1.log"), ScoreArgs(remote, "--cluster", conn, "--lease-seconds", "4"));
        IHost? watcher = null;
        try
        {
            // A client of our own, to watch the job: once the workers' silos are up (they create the schema).
            await Until(() => Task.FromResult(Enumerable.Range(0, 3).All(i => File.Exists(_tmp.Sub($"w{i}.log")) && File.ReadAllText(_tmp.Sub($"w{i}.log")).Contains(" ready ")) ? "" : null),
                "the workers to start");
            // It talks to w2's gateway only, the worker that lives to the end: a client that also knows w0's gateway can
            // wait on the dead one for minutes (seen once in about ten runs; see the issue's notes).
            var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
            builder.UseOrleansClient(c =>
            {
                c.Configure<Orleans.Configuration.ClusterOptions>(o =>
                {
                    o.ClusterId = ClusterClient.ClusterId;
                    o.ServiceId = ClusterClient.ServiceId;
                });
                c.UseStaticClustering(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, gateways[2]));
            });
            watcher = builder.Build();
            await watcher.StartAsync();
            var grains = watcher.Services.GetRequiredService<IClusterClient>();
            var registry = grains.GetGrain<IJobRegistryGrain>(IJobRegistryGrain.Key);
            string key = await Until(async () => (await registry.AllAsync()).SingleOrDefault(), "the job to be submitted");
            var job = grains.GetGrain<IJobGrain>(key);
            async Task<JobStatus> Status() => (await ClusterClient.RetryAsync(async () => (await job.StatusAsync())!, TimeSpan.FromSeconds(120), CancellationToken.None))!;

            // kill -9 a worker that holds leases, in mid-job.
            await Until(async () => (await Status()).Workers.Any(w => w.Worker == "w0" && w.Shards >= 2 && w.Leased >= 1) ? "" : null, "w0 to commit and hold leases");
            workers[0].Kill();
            // From here progress is counted in score shards on disk, not asked of the cluster: this client's own calls
            // can stall for minutes after a silo's death (about one run in five; see the issue's notes), while the
            // workers go on. The job must still complete below, which the cluster itself says.
            string scoresDir = Path.Combine(remote, ScoringManifest.ScoresFolder);
            int Written() => Directory.Exists(scoresDir) ? Directory.GetFiles(scoresDir, "*.parquet").Length : 0;
            int atKill = Written();
            // kill -9 the submitting client.
            await Until(() => Task.FromResult(Written() >= atKill + 15 ? "" : null), "15 more shards", 120);
            client.Kill();
            await client.WaitForExitAsync();
            // PostgreSQL restarts under the running job: the workers go on once they reconnect.
            int atRestart = Written();
            await pg.RestartAsync();
            await Until(() => Task.FromResult(Written() >= atRestart + 10 ? "" : null), "10 more shards after PostgreSQL restarted", 90);
            // SIGTERM: w1 hands back its leases and exits 0.
            Assert.True(Written() < 100, "the job ended before the SIGTERM");
            using (var kill = Process.Start("kill", ["-TERM", workers[1].Id.ToString(CultureInfo.InvariantCulture)])) await kill!.WaitForExitAsync();
            using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60))) await workers[1].WaitForExitAsync(timeout.Token);
            Assert.Equal(0, workers[1].ExitCode);
            Assert.Contains("handed back", File.ReadAllText(_tmp.Sub("w1.log")));

            // The client attaches again and the job completes (on w2 alone).
            var again = CliProcess.RunAsync(ScoreArgs(remote, "--cluster", conn, "--lease-seconds", "4"));
            if (await Task.WhenAny(again, Task.Delay(TimeSpan.FromMinutes(4))) != again)
                throw new TimeoutException("the re-attached client did not see the job complete within 4 minutes");
            (code, output) = await again;
            Assert.True(code == 0, output + File.ReadAllText(_tmp.Sub("w2.log")));
            Assert.Contains("attached to job " + key, output);
            // cluster status, as a script would read it (the connection string from a file).
            File.WriteAllText(_tmp.Sub("conn.txt"), conn);
            (code, output) = await CliProcess.RunAsync("cluster", "status", "--cluster", "file:" + _tmp.Sub("conn.txt"), "--json");
            Assert.True(code == 0, output);
            using (var doc = System.Text.Json.JsonDocument.Parse(output[..(output.IndexOf("\n}", StringComparison.Ordinal) + 2)]))
            {
                var jobs = doc.RootElement.GetProperty("jobs");
                Assert.Contains(jobs.EnumerateArray(), j => j.GetProperty("key").GetString() == key && j.GetProperty("done").GetInt32() == 100 && j.GetProperty("finished").GetBoolean());
                Assert.Contains(doc.RootElement.GetProperty("silos").EnumerateArray(), s => s.GetProperty("name").GetString() == "w2");
            }
            // (w0 committed at least 2 shards before its kill: checked above, from the cluster's status.)
        }
        catch (Exception e)
        {
            // The processes' own words, for whoever reads the failure.
            string Tail(string name) => File.Exists(_tmp.Sub(name)) ? string.Join("\n", File.ReadLines(_tmp.Sub(name)).TakeLast(25)) : "(none)";
            throw new InvalidOperationException($"{e.Message}\n--- w0.log\n{Tail("w0.log")}\n--- w1.log\n{Tail("w1.log")}\n--- w2.log\n{Tail("w2.log")}\n--- client1.log\n{Tail("client1.log")}", e);
        }
        finally
        {
            if (watcher is not null)
            {
                await watcher.StopAsync(CancellationToken.None);
                watcher.Dispose();
            }
            foreach (var p in workers.Append(client))
                if (!p.HasExited) p.Kill();
        }

        string scores = Path.Combine(remote, ScoringManifest.ScoresFolder);
        foreach (var file in Directory.GetFiles(Path.Combine(local, ScoringManifest.ScoresFolder), "*.parquet"))
            Assert.True(File.ReadAllBytes(file).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(scores, Path.GetFileName(file)))), $"{Path.GetFileName(file)} differs");
        Assert.Equal(100, Directory.GetFiles(scores, "*.parquet").Length);
        // A write cut off by kill -9 leaves its temporary file, which the job leaves alone for its first minutes (a stale
        // worker may still be writing one); any other process's would be a leak. Temporary names carry the writer's pid.
        var killed = new[] { workers[0].Id, client.Id }.Select(pid => $".{pid:x}-").ToList();
        Assert.All(Directory.GetFiles(scores, "*.partial"), p => Assert.True(killed.Any(k => Path.GetFileName(p).Contains(k, StringComparison.Ordinal)),
            $"{Path.GetFileName(p)} is no temporary file of a process killed with -9 ({string.Join(", ", killed)})"));
        Assert.Equal(File.ReadAllBytes(Path.Combine(local, "selection", SelectionManifest.DhatFileName)), File.ReadAllBytes(Path.Combine(remote, "selection", SelectionManifest.DhatFileName)));
    }

    private static async Task<T> Until<T>(Func<Task<T?>> probe, string what, int seconds = 60)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                if (await probe() is T value) return value;
            }
            catch (Exception) when (clock.Elapsed < TimeSpan.FromSeconds(seconds))
            {
            }
            if (clock.Elapsed > TimeSpan.FromSeconds(seconds)) throw new TimeoutException($"timed out waiting for {what}");
            await Task.Delay(100);
        }
    }
}
