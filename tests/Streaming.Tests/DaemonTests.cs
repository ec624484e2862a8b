using System.Diagnostics;
using System.Globalization;
using System.Net.Http;
using System.Text.Json;
using System.Text.RegularExpressions;
using Streaming.Core.Datasets;
using Streaming.Core.Ingest;
using Streaming.Core.Selection;
using Streaming.Core.Shards;
using Streaming.Daemon;
using Streaming.Models.Training;
using Streaming.Models.Loading;
using Xunit;

namespace Streaming.Tests;

/// <summary>
/// The daemon as users run it: a real process, shards arriving in the inbox over time, kill -9 at random
/// moments, SIGTERM while busy, bad drops. The reference is a batch <c>score</c> + <c>select</c> over the same shards.
/// </summary>
[Collection(nameof(ProcessState))]
public partial class DaemonTests : IAsyncLifetime
{
    private readonly TempDir _tmp = new();
    private string Unlabeled => _tmp.Sub("u");
    private string Teacher => _tmp.Sub("teacher");
    private string Batch => _tmp.Sub("batch");
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };

    public async ValueTask InitializeAsync()
    {
        // 300 images in 20 shards of 15.
        await Ingestor.RunAsync(ImageSource.Open(TestPaths.MiniTar), Unlabeled, new IngestOptions { Writer = new() { ShardSize = 15 } });
        await Trainer.RunAsync(new TrainOptions
        {
            Data = Unlabeled, Arch = "cnn-small", Out = Teacher, Images = 32 * 8, BatchSize = 32, BaseLr = 0.2,
            Schedule = ScheduleKind.Cosine, Threads = 2,
        });
    }

    public ValueTask DisposeAsync()
    {
        _tmp.Dispose();
        return ValueTask.CompletedTask;
    }

    private string[] Shards => DatasetManifest.Load(Unlabeled).Shards.Select(s => Path.Combine(Unlabeled, s.File)).ToArray();

    /// <summary>The daemon with the test's settings: batch and threads as the batch reference, fast polling, frequent checkpoints.</summary>
    private static Process StartDaemon(string teacher, string inbox, string state, params string[] more) =>
        StartDaemonAt(state + ".log", "127.0.0.1:0", teacher, inbox, state, more);

    /// <summary>As <see cref="StartDaemon"/>, logging to <paramref name="log"/> and listening on <paramref name="listen"/>.</summary>
    private static Process StartDaemonAt(string log, string listen, string teacher, string inbox, string state, params string[] more) =>
        CliProcess.StartLogged(log, DaemonArgs(teacher, inbox, state, listen, more));

    /// <summary>As <see cref="StartDaemon"/>, run under another program (strace and its flags); later --set values win.</summary>
    private static Process StartDaemonUnder(string[] wrapper, string teacher, string inbox, string state, params string[] more) =>
        CliProcess.StartLoggedUnder(wrapper, state + ".log", DaemonArgs(teacher, inbox, state, "127.0.0.1:0", more));

    /// <summary>The test daemon's command line: batch and threads as the batch reference, fast polling, frequent checkpoints.</summary>
    private static string[] DaemonArgs(string teacher, string inbox, string state, string listen, string[] more) =>
        ["daemon", "--teacher", teacher, "--inbox", inbox, "--state", state, "-k", "8", "-p", "2", "--top-p", "5", "--listen", listen,
         "--set", "scoring.batch=16", "--set", "scoring.threads=1", "--set", "watch.settle_seconds=0", "--set", "watch.poll_seconds=0.1",
         "--set", "checkpoint.every_shards=3", "--set", "snapshot.every_shards=4", .. more];

    /// <summary>The pid and address a daemon wrote into daemon.json (under strace, its pid is not the child's).</summary>
    private static async Task<(int Pid, string Address)> DaemonInfoAsync(string state)
    {
        string info = Path.Combine(state, DaemonHost.InfoFile);
        await WaitFor(() => File.Exists(info), "daemon.json", state);
        using var doc = JsonDocument.Parse(File.ReadAllText(info));
        return (doc.RootElement.GetProperty("pid").GetInt32(), doc.RootElement.GetProperty("http").GetString()!);
    }

    /// <summary>Copies a file into the inbox the way users are told to: under a temporary name, then a rename.</summary>
    private static void Drop(string file, string inbox, string? name = null)
    {
        name ??= Path.GetFileName(file);
        string temp = Path.Combine(inbox, "." + name + ".partial");
        File.Copy(file, temp, overwrite: true);
        File.Move(temp, Path.Combine(inbox, name));
    }

    private static async Task<string> AddressOf(Process daemon, string state)
    {
        var clock = Stopwatch.StartNew();
        string info = Path.Combine(state, DaemonHost.InfoFile);
        while (clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            Assert.False(daemon.HasExited, $"the daemon exited early with code {(daemon.HasExited ? daemon.ExitCode : 0)}");
            if (File.Exists(info))
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(info));
                if (doc.RootElement.GetProperty("pid").GetInt32() == daemon.Id) return doc.RootElement.GetProperty("http").GetString()!;
            }
            await Task.Delay(50);
        }
        throw new TimeoutException("the daemon did not start within a minute");
    }

    private static int DoneCount(string state)
    {
        string log = Path.Combine(state, DaemonState.DoneLog);
        return File.Exists(log) ? File.ReadAllText(log).Count(c => c == '\n') : 0;
    }

    /// <summary>Waits for a condition; on a timeout, the daemon's log (<paramref name="state"/>.log) goes into the message.</summary>
    private static async Task WaitFor(Func<bool> condition, string what, string state, int seconds = 120)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(seconds))
            {
                string log = File.Exists(state + ".log") ? string.Join("\n", File.ReadLines(state + ".log").TakeLast(40)) : "(no log)";
                throw new TimeoutException($"timed out waiting for {what}; the daemon's log ends:\n{log}");
            }
            await Task.Delay(50);
        }
    }

    private static async Task<int> Sigterm(Process daemon)
    {
        using (var kill = Process.Start("kill", ["-TERM", daemon.Id.ToString(CultureInfo.InvariantCulture)])) await kill!.WaitForExitAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await daemon.WaitForExitAsync(timeout.Token);
        return daemon.ExitCode;
    }

    [Trait(Traits.Asserts, Traits.BitIdentity)]
    [Fact]
    public async Task Kill9Twice_WhileShardsArrive_FinalDhatIsByteIdenticalToBatchSelect()
    {
        // The reference: one batch scoring run and a select over its scores, with the same K, P, P', batch and threads.
        var (code, output) = await CliProcess.RunAsync("score", "--teacher", Teacher, "--data", Unlabeled, "--out", Batch, "--top-p", "5", "--batch", "16", "--threads", "1");
        Assert.True(code == 0, output);
        (code, output) = await CliProcess.RunAsync("select", "--scores", Batch, "-k", "8", "-p", "2", "--out", _tmp.Sub("batch-select"));
        Assert.True(code == 0, output);

        string inbox = _tmp.Sub("inbox"), state = _tmp.Sub("state");
        Directory.CreateDirectory(inbox);
        var random = new Random(1234);
        var order = Shards.OrderBy(_ => random.Next()).ToArray();
        int[] killAfter = [random.Next(3, 9), random.Next(10, 16)];
        var daemon = StartDaemon(Teacher, inbox, state);
        try
        {
            await AddressOf(daemon, state);
            for (int i = 0; i < order.Length; i++)
            {
                Drop(order[i], inbox);
                await Task.Delay(random.Next(30, 250));
                if (killAfter.Contains(i))
                {
                    await Task.Delay(random.Next(0, 400));
                    daemon.Kill(); // SIGKILL: no chance to checkpoint
                    await daemon.WaitForExitAsync();
                    daemon.Dispose();
                    daemon = StartDaemon(Teacher, inbox, state);
                    await AddressOf(daemon, state);
                }
            }
            await WaitFor(() => DoneCount(state) == 20 && DaemonState.Load(state)?.Snapshot?.Covers == 20, "all 20 shards and a snapshot over them", state);

            // Byte-identical D-hat, and the same counts.
            string latest = Path.Combine(state, "snapshots", "latest");
            Assert.NotNull(new DirectoryInfo(latest).LinkTarget);
            Assert.Equal(File.ReadAllBytes(Path.Combine(_tmp.Sub("batch-select"), SelectionManifest.DhatFileName)),
                File.ReadAllBytes(Path.Combine(latest, SelectionManifest.DhatFileName)));
            var reference = JsonSerializer.Deserialize<SelectionManifest>(File.ReadAllText(Path.Combine(_tmp.Sub("batch-select"), SelectionManifest.FileName)))!;
            var snapshot = JsonSerializer.Deserialize<SelectionManifest>(File.ReadAllText(Path.Combine(latest, SelectionManifest.FileName)))!;
            Assert.Equal(reference.Counts, snapshot.Counts);
            Assert.Equal(300, snapshot.RowsScored); // nothing counted twice

            // Each shard recorded exactly once, and every drop left the inbox.
            var state1 = DaemonState.Load(state)!;
            Assert.Equal(20, state1.Done.Select(d => d.Key).Distinct().Count());
            Assert.Equal(2, state1.Restarts);
            Assert.Empty(Directory.EnumerateFileSystemEntries(inbox));
            Assert.Equal(20, Directory.EnumerateFiles(Path.Combine(state, "processed")).Count());

            // /metrics parses as Prometheus text and its counters match.
            string address = await AddressOf(daemon, state);
            var metrics = ParsePrometheus(await Http.GetStringAsync(address + "/metrics"));
            Assert.Equal(300, metrics["streaming_images_scored_total"]);
            Assert.Equal(20, metrics["streaming_shards_done_total"]);
            Assert.Equal(0, metrics["streaming_images_quarantined_total"]);
            Assert.Equal(2, metrics["streaming_restarts_total"]);
            Assert.Equal(0, metrics["streaming_shards_pending"]);
            Assert.Equal(reference.Counts.Sum(), metrics.Where(m => m.Key.StartsWith("streaming_heap_entries{", StringComparison.Ordinal)).Sum(m => m.Value));
            Assert.True(metrics["streaming_snapshot_age_seconds"] >= 0);
            Assert.Equal("ready\n", await Http.GetStringAsync(address + "/readyz"));

            Assert.Equal(0, await Sigterm(daemon));
        }
        finally
        {
            if (!daemon.HasExited) daemon.Kill();
            daemon.Dispose();
        }
    }

    [Fact]
    public async Task BadDrops_GoToQuarantineWithReasons_AndTheDaemonKeepsServing()
    {
        string inbox = _tmp.Sub("inbox-bad"), state = _tmp.Sub("state-bad");
        Directory.CreateDirectory(inbox);
        using var daemon = StartDaemon(Teacher, inbox, state);
        try
        {
            string address = await AddressOf(daemon, state);
            // A shard cut short, a file that is no kind of drop, a shard list naming a missing shard, then a good shard.
            var bytes = File.ReadAllBytes(Shards[0]);
            File.WriteAllBytes(_tmp.Sub("cut.parquet"), bytes[..(bytes.Length / 2)]);
            Drop(_tmp.Sub("cut.parquet"), inbox);
            File.WriteAllText(_tmp.Sub("notes.pdf"), "%PDF-1.4 not an image");
            Drop(_tmp.Sub("notes.pdf"), inbox);
            File.WriteAllText(_tmp.Sub("more.list"), Shards[1] + "\n" + _tmp.Sub("missing.parquet") + "\n");
            Drop(_tmp.Sub("more.list"), inbox);
            Drop(Shards[2], inbox);
            await WaitFor(() => DoneCount(state) == 1 && Directory.GetFiles(Path.Combine(state, "quarantine"), "*.reason.txt").Length == 3, "the good shard and three quarantined drops", state);

            string Reason(string name) => File.ReadAllText(Path.Combine(state, "quarantine", name + ".reason.txt"));
            Assert.Contains("Parquet", Reason("cut.parquet"));
            Assert.Contains("not something the daemon takes", Reason("notes.pdf"));
            Assert.Contains("missing.parquet", Reason("more.list"));
            Assert.True(File.Exists(Path.Combine(state, "quarantine", "cut.parquet")));
            Assert.Equal(3, DaemonState.Load(state)!.QuarantinedDrops.Count);

            Assert.Equal("ok\n", await Http.GetStringAsync(address + "/healthz"));
            var metrics = ParsePrometheus(await Http.GetStringAsync(address + "/metrics"));
            Assert.Equal(3, metrics["streaming_drops_quarantined_total"]);
            Assert.Equal(1, metrics["streaming_shards_done_total"]);
            Assert.Equal(15, metrics["streaming_images_scored_total"]);
            using var status = JsonDocument.Parse(await Http.GetStringAsync(address + "/status"));
            Assert.Equal(3, status.RootElement.GetProperty("drops_quarantined").GetInt32());

            // The same good shard dropped again under another name is recognised and not counted twice.
            Drop(Shards[2], inbox, "again.parquet");
            await WaitFor(() => File.Exists(Path.Combine(state, "processed", "again.parquet")), "the repeated drop to be set aside", state);
            Assert.Equal(1, DoneCount(state));
            Assert.Equal(0, await Sigterm(daemon));
        }
        finally
        {
            if (!daemon.HasExited) daemon.Kill();
        }
    }

    [Fact]
    public async Task SigtermWhileBusy_ExitsZeroWithin10s_AndTheRestartFinishesTheShard()
    {
        // One shard big enough to still be in the graph when SIGTERM arrives: the sample's images, 40 times over.
        string big = _tmp.Sub("big.parquet");
        var records = new List<ImageRecord>();
        foreach (var shard in Shards)
            await foreach (var r in ImageShardReader.ReadAsync(shard)) records.Add(r);
        await using (var writer = await ImageShardWriter.CreateAsync(big))
        {
            for (int copy = 0; copy < 40; copy++)
                foreach (var r in records) await writer.WriteAsync(r with { Id = $"{r.Id}-{copy}" });
            await writer.CompleteAsync();
        }
        string inbox = _tmp.Sub("inbox-term"), state = _tmp.Sub("state-term");
        Directory.CreateDirectory(inbox);
        var daemon = StartDaemon(Teacher, inbox, state);
        try
        {
            string address = await AddressOf(daemon, state);
            Drop(big, inbox);
            await WaitFor(() =>
            {
                var m = ParsePrometheus(Http.GetStringAsync(address + "/metrics").Result);
                // The stage series appear once the graph has seen its first shard.
                return m.TryGetValue("streaming_stage_items_total{stage=\"infer\",direction=\"out\"}", out double n) && n > 500;
            }, "inference to be under way", state);
            var clock = Stopwatch.StartNew();
            Assert.Equal(0, await Sigterm(daemon));
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
            Assert.Equal(0, DoneCount(state)); // the shard was not finished, so it is not recorded...
            Assert.True(File.Exists(Path.Combine(inbox, "big.parquet"))); // ...and it waits in the inbox
            Assert.True(File.Exists(Path.Combine(state, DaemonState.FileName)));

            daemon.Dispose();
            daemon = StartDaemon(Teacher, inbox, state);
            await WaitFor(() => DoneCount(state) == 1, "the restarted daemon to finish the shard", state);
            var done = DaemonState.Load(state)!.Done.Single();
            Assert.Equal(records.Count * 40, done.Rows);
            Assert.Equal(1, DaemonState.Load(state)!.Restarts);
            Assert.Equal(0, await Sigterm(daemon));
        }
        finally
        {
            if (!daemon.HasExited) daemon.Kill();
            daemon.Dispose();
        }
    }

    [Fact]
    public async Task FolderAndTarDrops_AreIngestedThenScored_WithIdsPrefixedByTheDrop()
    {
        string inbox = _tmp.Sub("inbox-raw"), state = _tmp.Sub("state-raw");
        Directory.CreateDirectory(inbox);
        var daemon = StartDaemon(Teacher, inbox, state);
        try
        {
            await AddressOf(daemon, state);
            CopyFolder(TestPaths.MiniFolder, _tmp.Sub("photos-staging"));
            Directory.Move(_tmp.Sub("photos-staging"), Path.Combine(inbox, "folder1"));
            Drop(TestPaths.MiniTar, inbox);
            await WaitFor(() => DoneCount(state) == 2, "the folder and the tar to be scored", state);
            var done = DaemonState.Load(state)!.Done;
            Assert.Equal(Directory.EnumerateFiles(TestPaths.MiniFolder, "*.png", SearchOption.AllDirectories).Count(), done.Single(d => d.Drop == "folder1").Rows);
            Assert.Equal(300, done.Single(d => d.Drop == "fashion-mnist-mini.tar").Rows);
            foreach (var d in done)
                await foreach (var row in ScoreShards.ReadAsync(Path.Combine(state, d.ScoreFile)))
                    Assert.StartsWith(d.Drop + "/", row.Id);
            Assert.True(Directory.Exists(Path.Combine(state, "processed", "folder1")));
            Assert.True(File.Exists(Path.Combine(state, "processed", "fashion-mnist-mini.tar")));
            Assert.Equal(0, await Sigterm(daemon));
        }
        finally
        {
            if (!daemon.HasExited) daemon.Kill();
            daemon.Dispose();
        }
    }

    private static void CopyFolder(string from, string to)
    {
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }

    [Fact]
    public async Task BadConfig_FailsBeforeStarting_WithTheKeyAndLine()
    {
        string config = _tmp.Sub("daemon.yaml");
        File.WriteAllText(config, $"teacher: {Teacher}\ninbox: in\nstate: st\nscoring:\n  k: 10\n  kk: 3\n");
        var (code, output) = await CliProcess.RunAsync("daemon", "--config", config);
        Assert.Equal(3, code);
        Assert.Contains("daemon.yaml:6: unknown key 'scoring.kk' (did you mean 'scoring.k'?)", output);

        File.WriteAllText(config, $"teacher: {Teacher}\ninbox: in\nstate: st\nscoring:\n  k: 10\nhttp:\n  listen: 0.0.0.0:9000\n");
        (code, output) = await CliProcess.RunAsync("daemon", "--config", config);
        Assert.Equal(3, code);
        Assert.Contains("allow_remote", output);

        // The example config in deploy/ is valid (its teacher path is the server's, so it is replaced here).
        var example = DaemonConfig.Load(Path.Combine(TestPaths.Root, "deploy", "daemon.yaml"), [$"teacher={Teacher}"]);
        Assert.Equal(16000, example.Scoring.K);
        Assert.Equal((System.Net.IPAddress.Loopback, 8617), example.ParseListen()!.Value);
    }

    [GeneratedRegex("""^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:\\.|[^"\\])*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:\\.|[^"\\])*")*\})? (\S+)$""")]
    private static partial Regex Sample();

    [GeneratedRegex("""^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$""")]
    private static partial Regex Comment();

    /// <summary>A strict reader of the Prometheus text format: every line a HELP, a TYPE or a sample of a declared metric.</summary>
    internal static Dictionary<string, double> ParsePrometheus(string text)
    {
        Assert.EndsWith("\n", text);
        var types = new Dictionary<string, string>();
        var samples = new Dictionary<string, double>();
        foreach (var line in text.TrimEnd('\n').Split('\n'))
        {
            var c = Comment().Match(line);
            if (c.Success)
            {
                if (c.Groups[1].Value == "TYPE")
                {
                    Assert.Contains(c.Groups[3].Value, new[] { "counter", "gauge", "histogram", "summary", "untyped" });
                    Assert.True(types.TryAdd(c.Groups[2].Value, c.Groups[3].Value), $"TYPE twice: {line}");
                }
                continue;
            }
            var s = Sample().Match(line);
            Assert.True(s.Success, $"not a Prometheus sample line: '{line}'");
            Assert.True(types.ContainsKey(s.Groups[1].Value), $"sample before its TYPE: '{line}'");
            string v = s.Groups[3].Value;
            double value = v switch { "+Inf" => double.PositiveInfinity, "-Inf" => double.NegativeInfinity, "NaN" => double.NaN, _ => double.Parse(v, NumberStyles.Float, CultureInfo.InvariantCulture) };
            Assert.True(samples.TryAdd(s.Groups[1].Value + s.Groups[2].Value, value), $"sample twice: {line}");
            if (types[s.Groups[1].Value] == "counter") Assert.True(value >= 0, line);
        }
        return samples;
    }
}
