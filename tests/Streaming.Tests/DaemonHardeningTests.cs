using System.Formats.Tar;
using System.Net;
using System.Net.Http.Headers;
using Streaming.Daemon;
using Xunit;

namespace Streaming.Tests;

/// <summary>The daemon against hostile drops (issue 18): none of them stops it, each is quarantined with its reason or scored in full.</summary>
public partial class DaemonTests
{
    /// <summary>A tar of the given members, as WebDataset shards are.</summary>
    internal static void WriteTar(string path, params (string Name, byte[] Data)[] members)
    {
        using var file = File.Create(path);
        using var writer = new TarWriter(file, TarEntryFormat.Pax);
        foreach (var (member, data) in members)
            writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, member) { DataStream = new MemoryStream(data) });
    }

    [Fact]
    public async Task HostileDrops_AreQuarantinedOrScoredInFull_TheDaemonGoesOn_AndTheTokenGuardsStatus()
    {
        string inbox = _tmp.Sub("inbox-hostile"), state = _tmp.Sub("state-hostile"), token = _tmp.Sub("token");
        Directory.CreateDirectory(inbox);
        File.WriteAllText(token, "s3cret-token-0123456789\n");
        using var daemon = StartDaemon(Teacher, inbox, state, "--set", $"http.token_file={token}", "--set", "limits.max_member_mb=1");
        try
        {
            string address = await AddressOf(daemon, state);
            var pngs = Directory.EnumerateFiles(TestPaths.MiniFolder, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Take(3).Select(File.ReadAllBytes).ToArray();

            // A tar whose second sample claims label 2,000,000,000: that image is quarantined, the rest scored.
            WriteTar(_tmp.Sub("labels.tar"), ("a.png", pngs[0]), ("a.cls", "1"u8.ToArray()), ("b.png", pngs[1]), ("b.cls", "2000000000"u8.ToArray()));
            Drop(_tmp.Sub("labels.tar"), inbox);
            // A tar with a member over limits.max_member_mb: quarantined whole.
            WriteTar(_tmp.Sub("huge.tar"), ("a.png", pngs[0]), ("b.png", new byte[2 << 20]));
            Drop(_tmp.Sub("huge.tar"), inbox);
            // A drop that is a link to a shard outside the inbox.
            File.CreateSymbolicLink(Path.Combine(inbox, "elsewhere.parquet"), Shards[3]);
            // A folder drop with a link loop in it and one image.
            string loop = _tmp.Sub("loop-staging");
            Directory.CreateDirectory(Path.Combine(loop, "x"));
            File.WriteAllBytes(Path.Combine(loop, "x", "one.png"), pngs[2]);
            Directory.CreateSymbolicLink(Path.Combine(loop, "x", "again"), loop);
            Run("mkfifo", Path.Combine(loop, "x", "pipe.png")); // would block a reader for ever
            Directory.Move(loop, Path.Combine(inbox, "loopy"));
            // A named pipe dropped as a shard.
            Run("mkfifo", Path.Combine(inbox, "pipe.parquet"));

            string Quarantine(string name) => Path.Combine(state, "quarantine", name + ".reason.txt");
            await WaitFor(() => DoneCount(state) == 2 && File.Exists(Quarantine("huge.tar")) && File.Exists(Quarantine("elsewhere.parquet")) && File.Exists(Quarantine("pipe.parquet")),
                "two scored drops and three quarantined", state);
            Assert.Contains("not a regular file", File.ReadAllText(Quarantine("pipe.parquet")));
            Assert.Contains("limits.max_member_mb", File.ReadAllText(Quarantine("huge.tar")));
            Assert.Contains("symbolic link", File.ReadAllText(Quarantine("elsewhere.parquet")));
            Assert.True(File.Exists(Shards[3]), "the link's target is left alone");
            var done = DaemonState.Load(state)!.Done;
            Assert.Equal(1, done.Single(d => d.Drop == "labels.tar").Rows);
            Assert.Equal(1, done.Single(d => d.Drop == "loopy").Rows);

            // The same name again with other content: ingested and scored in full, not taken for the first.
            WriteTar(_tmp.Sub("labels2.tar"), ("c.png", pngs[2]), ("d.png", pngs[0]), ("e.png", pngs[1]));
            Drop(_tmp.Sub("labels2.tar"), inbox, "labels.tar");
            await WaitFor(() => DoneCount(state) == 3, "the second labels.tar", state);
            Assert.Equal([1L, 3L], DaemonState.Load(state)!.Done.Where(d => d.Drop == "labels.tar").Select(d => d.Rows).Order());

            // The endpoints: probes open, /status and /metrics behind the token.
            Assert.Equal("ok\n", await Http.GetStringAsync(address + "/healthz"));
            Assert.Equal(HttpStatusCode.Unauthorized, (await Http.GetAsync(address + "/status")).StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, (await Http.GetAsync(address + "/metrics")).StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, (await Http.GetAsync(address + "/dhat?class=0")).StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, (await Http.GetAsync(address + "/dhat/image?class=0&rank=1&version=1")).StatusCode);
            using var request = new HttpRequestMessage(HttpMethod.Get, address + "/metrics");
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "s3cret-token-0123456789");
            using var response = await Http.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var metrics = ParsePrometheus(await response.Content.ReadAsStringAsync());
            Assert.Equal(3, metrics["streaming_drops_quarantined_total"]);
            Assert.Equal(0, await Sigterm(daemon));
        }
        finally
        {
            if (!daemon.HasExited) daemon.Kill();
        }
    }

    [Fact]
    public async Task LostScoreShards_AfterAPowerLoss_AreScoredAgain_InsteadOfRefusingToStart()
    {
        string inbox = _tmp.Sub("inbox-lost"), state = _tmp.Sub("state-lost");
        Directory.CreateDirectory(inbox);
        string[] noCheckpoint = ["--set", "checkpoint.every_shards=1000"];
        var daemon = StartDaemon(Teacher, inbox, state, noCheckpoint);
        List<DoneShard> before;
        try
        {
            await AddressOf(daemon, state);
            foreach (var shard in Shards.Take(3)) Drop(shard, inbox);
            await WaitFor(() => DoneCount(state) == 3, "three shards", state);
            daemon.Kill(); // as a power loss would: no checkpoint, done.jsonl names all three
            await daemon.WaitForExitAsync();
            before = DaemonState.Load(state)!.Done;
        }
        finally
        {
            if (!daemon.HasExited) daemon.Kill();
            daemon.Dispose();
        }
        // One score shard torn, one gone: what a rename that never reached the disk leaves.
        string torn = Path.Combine(state, before[0].ScoreFile), gone = Path.Combine(state, before[1].ScoreFile);
        File.WriteAllBytes(torn, File.ReadAllBytes(torn)[..100]);
        File.Delete(gone);

        using var again = StartDaemon(Teacher, inbox, state, noCheckpoint);
        try
        {
            await AddressOf(again, state);
            bool Restored() => DoneCount(state) == 3 && before.All(d => File.Exists(Path.Combine(state, d.ScoreFile))
                && Streaming.Core.Hashing.Sha256File(Path.Combine(state, d.ScoreFile)) == d.ScoreSha256);
            await WaitFor(Restored, "the lost score shards to be scored again, byte for byte", state);
            Assert.Equal(before.Select(d => d.Key).Order(), DaemonState.Load(state)!.Done.Select(d => d.Key).Order());
            Assert.Equal(0, await Sigterm(again));
        }
        finally
        {
            if (!again.HasExited) again.Kill();
        }
    }

    private static async Task<(int Code, string Text)> Get(string url)
    {
        using var response = await Http.GetAsync(url);
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>An endpoint's answer, or null while nothing listens there yet.</summary>
    private static (int Code, string Text)? TryGet(string url)
    {
        try
        {
            return Get(url).GetAwaiter().GetResult();
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }

    private static int FreePort()
    {
        var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private static void Run(string file, params string[] args)
    {
        using var p = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(file, args) { RedirectStandardError = true })!;
        string error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{file} {string.Join(' ', args)}: exit {p.ExitCode}: {error}");
    }

    [Fact]
    public async Task DiskFull_FailsThatShardOnly_SaysDegraded_AndTheDaemonGoesOnOnceThereIsRoom()
    {
        // The state folder on a 48 MB tmpfs of its own, filled to the last byte: the real write path hits ENOSPC.
        Prerequisite.Root("it mounts a 48 MB tmpfs to fill the state folder's disk").Require();
        string mount = _tmp.Sub("small-disk"), inbox = _tmp.Sub("inbox-full"), state = Path.Combine(mount, "state");
        Directory.CreateDirectory(mount);
        Directory.CreateDirectory(inbox);
        Run("mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", mount);
        try
        {
            var daemon = StartDaemon(Teacher, inbox, state, "--set", "snapshot.on_idle=false");
            try
            {
                string address = await AddressOf(daemon, state);
                Drop(Shards[0], inbox);
                await WaitFor(() => DoneCount(state) == 1, "the first shard", state);
                var first = DaemonState.Load(state)!.Done.Single();

                string filler = Path.Combine(mount, "filler");
                await using (var f = new FileStream(filler, FileMode.Create, FileAccess.Write))
                {
                    var block = new byte[1 << 16];
                    try
                    {
                        while (true) f.Write(block);
                    }
                    catch (IOException)
                    {
                    }
                    for (int n = 4096; n >= 1; n /= 2)
                        try
                        {
                            f.Write(block, 0, n);
                            f.Flush();
                        }
                        catch (IOException)
                        {
                        }
                }
                Drop(Shards[1], inbox);
                await WaitFor(() => Get(address + "/readyz").Result.Code == 503, "/readyz to say not ready", state, 30);
                var (code, text) = await Get(address + "/healthz");
                Assert.Equal(200, code);
                Assert.StartsWith("degraded: the state folder's disk is full", text);
                Assert.Contains("disk is full", (await Get(address + "/readyz")).Text);
                Assert.True(File.Exists(Path.Combine(inbox, Path.GetFileName(Shards[1]))), "the drop waits in the inbox");
                Assert.Equal(1, DoneCount(state));

                // Killed (kill -9) and restarted while the disk is still full: it starts degraded and waits for room.
                // (It used to stop with exit 3: recovery could not save state.json.)
                daemon.Kill();
                await daemon.WaitForExitAsync();
                int port = FreePort();
                string restartLog = _tmp.Sub("full-restart"); // its log is not on the full disk
                address = $"http://127.0.0.1:{port}";
                daemon = StartDaemonAt(restartLog + ".log", $"127.0.0.1:{port}", Teacher, inbox, state, "--set", "snapshot.on_idle=false");
                await WaitFor(() => !daemon.HasExited && TryGet(address + "/healthz") is (200, var t) && t.StartsWith("degraded: ", StringComparison.Ordinal),
                    "the restarted daemon to say degraded", restartLog, 60);
                Assert.Equal(503, (await Get(address + "/readyz")).Code);
                Assert.Equal(1, DoneCount(state));

                File.Delete(filler);
                await WaitFor(() => DoneCount(state) == 2, "the waiting shard once there is room", restartLog, 60);
                await WaitFor(() => Get(address + "/readyz").Result.Code == 200, "/readyz to be ready again", restartLog, 30);
                Assert.Equal(1, DaemonState.Load(state)!.Restarts); // saved by the checkpoint taken once there was room
                Assert.Equal((200, "ok\n"), await Get(address + "/healthz"));
                Assert.Equal(first.ScoreSha256, Streaming.Core.Hashing.Sha256File(Path.Combine(state, first.ScoreFile)));
                Assert.Equal(0, await Sigterm(daemon));
            }
            finally
            {
                if (!daemon.HasExited) daemon.Kill();
                await daemon.WaitForExitAsync();
            }
        }
        finally
        {
            Run("umount", "-l", mount);
        }
    }

    [Fact]
    public async Task AFailedCheckpoint_TurnsHealthUnhealthy_UntilOneSucceeds()
    {
        string inbox = _tmp.Sub("inbox-ckpt"), state = _tmp.Sub("state-ckpt");
        Directory.CreateDirectory(inbox);
        using var daemon = StartDaemon(Teacher, inbox, state, "--set", "checkpoint.every_shards=1");
        try
        {
            string address = await AddressOf(daemon, state);
            await WaitFor(() => Get(address + "/readyz").Result.Code == 200, "ready", state);
            string heaps = Path.Combine(state, "heaps");
            Directory.Delete(heaps, true);
            File.WriteAllText(heaps, "not a folder");
            Drop(Shards[0], inbox);
            await WaitFor(() => DoneCount(state) == 1, "the shard", state);
            await WaitFor(() => Get(address + "/healthz").Result.Code == 503, "/healthz to say unhealthy", state, 30);
            Assert.StartsWith("unhealthy: the heaps checkpoint failed", (await Get(address + "/healthz")).Text);

            File.Delete(heaps);
            Directory.CreateDirectory(heaps);
            Drop(Shards[1], inbox);
            await WaitFor(() => DoneCount(state) == 2 && Get(address + "/healthz").Result.Code == 200, "a checkpoint that succeeds", state, 30);
            Assert.Equal(2, DaemonState.Load(state)!.Heaps!.Covers);
            Assert.Equal(0, await Sigterm(daemon));
        }
        finally
        {
            if (!daemon.HasExited) daemon.Kill();
        }
    }

    [Fact]
    public async Task MutatedDrops_AreEachScoredOrQuarantined_AndTheDaemonNeverStops()
    {
        string inbox = _tmp.Sub("inbox-fuzz"), state = _tmp.Sub("state-fuzz"), staging = _tmp.Sub("fuzz-staging");
        Directory.CreateDirectory(inbox);
        Directory.CreateDirectory(staging);
        string tar = _tmp.Sub("fuzz-base.tar");
        WriteTar(tar, ("a.png", FuzzTests.Png(0)), ("a.cls", "1"u8.ToArray()), ("b.png", FuzzTests.Png(1)));
        var tarBytes = File.ReadAllBytes(tar);
        var shardBytes = File.ReadAllBytes(Shards[4]);
        var png = FuzzTests.Png(2);
        var rng = new Random(18);
        var names = new List<string>();
        for (int i = 0; i < 8; i++)
        {
            // A mutated tar, a mutated shard, and a folder holding a mutated PNG and a good one.
            File.WriteAllBytes(Path.Combine(staging, $"t{i}.tar"), FuzzTests.MutateOnce(tarBytes, rng));
            File.WriteAllBytes(Path.Combine(staging, $"s{i}.parquet"), FuzzTests.MutateOnce(shardBytes, rng));
            Directory.CreateDirectory(Path.Combine(staging, $"f{i}"));
            File.WriteAllBytes(Path.Combine(staging, $"f{i}", "bad.png"), FuzzTests.MutateOnce(png, rng));
            File.WriteAllBytes(Path.Combine(staging, $"f{i}", "good.png"), FuzzTests.Png(i));
            names.AddRange([$"t{i}.tar", $"s{i}.parquet", $"f{i}"]);
        }
        using var daemon = StartDaemon(Teacher, inbox, state);
        try
        {
            string address = await AddressOf(daemon, state);
            foreach (var name in names) Directory.Move(Path.Combine(staging, name), Path.Combine(inbox, name)); // (works for files too)
            bool Handled(string name) => File.Exists(Path.Combine(state, "quarantine", name + ".reason.txt"))
                || File.Exists(Path.Combine(state, "processed", name)) || Directory.Exists(Path.Combine(state, "processed", name));
            await WaitFor(() => names.All(Handled), "every mutated drop to be scored or quarantined", state, 180);
            Assert.False(daemon.HasExited);
            Assert.Equal("ok\n", await Http.GetStringAsync(address + "/healthz"));
            int quarantined = names.Count(n => File.Exists(Path.Combine(state, "quarantine", n + ".reason.txt")));
            Assert.Empty(Directory.EnumerateFileSystemEntries(inbox));
            Assert.True(quarantined > 0 && quarantined < names.Count, $"{quarantined} of {names.Count} quarantined");
            Assert.Equal(0, await Sigterm(daemon));
        }
        finally
        {
            if (!daemon.HasExited) daemon.Kill();
        }
    }

    [Fact]
    public async Task ADropThatCannotBeListed_IsQuarantinedAfterItsRetries_NotRetriedForEver()
    {
        // A folder nested deeper than PATH_MAX: listing it fails the same way every time.
        string inbox = _tmp.Sub("inbox-deep"), state = _tmp.Sub("state-deep"), staging = _tmp.Sub("deep");
        Directory.CreateDirectory(inbox);
        Directory.CreateDirectory(staging);
        File.WriteAllBytes(Path.Combine(staging, "a.png"), FuzzTests.Png(0));
        string level = new('d', 250);
        Run("bash", "-c", $"cd '{staging}' && for i in $(seq 20); do mkdir {level} && cd {level} || exit 1; done");
        using var daemon = StartDaemon(Teacher, inbox, state, "--set", "intake.retry_tries=3", "--set", "intake.retry_seconds=0");
        try
        {
            string address = await AddressOf(daemon, state);
            Directory.Move(staging, Path.Combine(inbox, "deep"));
            Drop(Shards[5], inbox);
            string reason = Path.Combine(state, "quarantine", "deep.reason.txt");
            await WaitFor(() => File.Exists(reason) && DoneCount(state) == 1, "the deep drop quarantined and the good shard scored", state, 60);
            Assert.Contains("could not be listed 3 times", File.ReadAllText(reason));
            Assert.Equal("ok\n", await Http.GetStringAsync(address + "/healthz"));
            Assert.Equal(0, await Sigterm(daemon));
        }
        finally
        {
            if (!daemon.HasExited) daemon.Kill();
            Run("rm", "-rf", inbox, state, staging); // .NET cannot delete past PATH_MAX; rm can
        }
    }
}

/// <summary>The daemon as a cluster client (issue 19): its shards are scored by a worker process, not by itself.</summary>
public partial class DaemonTests
{
    [Fact]
    public async Task AsAClusterClient_TheDaemonHandsItsShardsToTheWorkers_AndKeepsItsHeapsAndEndpoints()
    {
        var (code, output) = await CliProcess.RunAsync("score", "--teacher", Teacher, "--data", Unlabeled, "--out", _tmp.Sub("batch-cl"), "--top-p", "5", "--batch", "16", "--threads", "1");
        Assert.True(code == 0, output);
        await using var pg = await TempPostgres.StartAsync(_tmp.Sub("pg-daemon"));
        using var worker = CliProcess.StartLogged(_tmp.Sub("worker-daemon.log"), "worker", "--cluster", pg.ConnectionString,
            "--silo-port", Streaming.Cluster.ClusterHosting.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--gateway-port", Streaming.Cluster.ClusterHosting.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture), "--name", "w-daemon", "--decode-workers", "1");
        string inbox = _tmp.Sub("inbox-cluster"), state = _tmp.Sub("state-cluster");
        Directory.CreateDirectory(inbox);
        var daemon = StartDaemon(Teacher, inbox, state, "--set", $"cluster={pg.ConnectionString}", "--set", "cluster.lease_seconds=5");
        try
        {
            string address = await AddressOf(daemon, state);
            foreach (var shard in Shards.Take(3)) Drop(shard, inbox);
            // More while the worker is busy with the first: shards appended after it read the job's spec.
            await WaitFor(() => File.ReadAllText(_tmp.Sub("worker-daemon.log")).Contains("scoring shards of", StringComparison.Ordinal), "the worker to start", state, 60);
            foreach (var shard in Shards.Skip(3).Take(3)) Drop(shard, inbox);
            await WaitFor(() => DoneCount(state) == 6, "six shards scored on the cluster", state, 120);
            var status = await Get(address + "/status");
            Assert.Equal(200, status.Code);
            Assert.Contains("\"shards_done\": 6", status.Text);
            string workerLog = File.ReadAllText(_tmp.Sub("worker-daemon.log"));
            Assert.DoesNotContain(" fail: ", workerLog);
            Assert.DoesNotContain("refused", workerLog);
            // Scored by the worker, into the daemon's state folder, with the bytes a one-machine score writes.
            Assert.Contains("job daemon-", File.ReadAllText(_tmp.Sub("worker-daemon.log")));
            Assert.Contains("scoring on the cluster", File.ReadAllText(state + ".log"));
            foreach (var done in DaemonState.Load(state)!.Done)
            {
                string reference = Path.Combine(_tmp.Sub("batch-cl"), "scores", $"score-{Path.GetFileNameWithoutExtension(done.Input)}.parquet");
                Assert.Equal(File.ReadAllBytes(reference), File.ReadAllBytes(Path.Combine(state, done.ScoreFile)));
            }
            Assert.Equal(0, await Sigterm(daemon));
        }
        finally
        {
            if (!daemon.HasExited) daemon.Kill();
            if (!worker.HasExited) worker.Kill();
        }
    }
}

/// <summary>What operators deploy (issue 21): the alert rules pass promtool, and every metric they or the Grafana dashboard use is one /metrics exposes.</summary>
public partial class DaemonTests
{
    private static async Task Promtool(params string[] args)
    {
        Prerequisite.Promtool.Require();
        var info = new System.Diagnostics.ProcessStartInfo("promtool", args) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Path.Combine(TestPaths.Root, "deploy", "prometheus") };
        using var p = System.Diagnostics.Process.Start(info)!;
        string output = await p.StandardOutput.ReadToEndAsync() + await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        Assert.True(p.ExitCode == 0, $"promtool {string.Join(' ', args)}: {output}");
    }

    [Fact]
    public async Task AlertRules_PassPromtoolAndTheirUnitTests_AndEveryMetricTheyOrTheDashboardUseIsExposed()
    {
        // promtool (Debian's prometheus package, which .ci/run installs): syntax, then each alert fired from synthetic series.
        await Promtool("check", "rules", "alerts.yml");
        await Promtool("test", "rules", "alerts.test.yml");
        await Promtool("check", "config", "--syntax-only", "scrape.yml");

        string inbox = _tmp.Sub("inbox-metrics"), state = _tmp.Sub("state-metrics");
        Directory.CreateDirectory(inbox);
        var daemon = StartDaemon(Teacher, inbox, state, "--set", "snapshot.every_shards=1");
        try
        {
            string address = await AddressOf(daemon, state);
            Drop(Shards[0], inbox);
            await WaitFor(() => DoneCount(state) == 1 && Directory.Exists(Path.Combine(state, "snapshots", "000001")), "a shard and a snapshot", state);
            var exposed = System.Text.RegularExpressions.Regex.Matches((await Get(address + "/metrics")).Text, @"^# TYPE (\w+) ", System.Text.RegularExpressions.RegexOptions.Multiline)
                .Select(m => m.Groups[1].Value).ToHashSet();
            foreach (var file in new[] { Path.Combine("deploy", "prometheus", "alerts.yml"), Path.Combine("deploy", "grafana", "streaming-daemon.json") })
            {
                var used = System.Text.RegularExpressions.Regex.Matches(File.ReadAllText(Path.Combine(TestPaths.Root, file)), @"\bstreaming_[a-z_]+\b").Select(m => m.Value).ToHashSet();
                Assert.True(used.Count >= 5, $"{file} uses only {used.Count} metrics");
                Assert.Empty(used.Where(name => !exposed.Contains(name)).Select(name => $"{file}: {name}"));
            }
            Assert.Equal(0, await Sigterm(daemon));
        }
        finally
        {
            if (!daemon.HasExited) daemon.Kill();
        }
    }
}

public partial class DaemonTests
{
    [Fact]
    public async Task LinkDrops_ToAFolderOrAFile_InsideOrOutside_LeaveTheInboxAsLinks_AndAreNeverQuarantinedTwice()
    {
        string inbox = _tmp.Sub("inbox-links"), state = _tmp.Sub("state-links"), outside = _tmp.Sub("outside-folder");
        Directory.CreateDirectory(inbox);
        Directory.CreateDirectory(Path.Combine(outside, "etc"));
        File.WriteAllText(Path.Combine(outside, "etc", "passwd"), "root:x:0:0\n");
        // A link to a folder outside the inbox (as a link to /etc would be), one to a folder inside it, and a dangling one.
        Directory.CreateSymbolicLink(Path.Combine(inbox, "escape"), outside);
        Directory.CreateDirectory(Path.Combine(inbox, ".hidden-staging"));
        Directory.CreateSymbolicLink(Path.Combine(inbox, "inside"), Path.Combine(inbox, ".hidden-staging"));
        File.CreateSymbolicLink(Path.Combine(inbox, "dangling.parquet"), _tmp.Sub("no-such-file.parquet"));
        string Reason(string name) => Path.Combine(state, "quarantine", name + ".reason.txt");
        for (int run = 0; run < 2; run++)
        {
            using var daemon = StartDaemon(Teacher, inbox, state);
            try
            {
                await AddressOf(daemon, state);
                if (run == 0)
                    await WaitFor(() => File.Exists(Reason("escape")) && File.Exists(Reason("inside")) && File.Exists(Reason("dangling.parquet")), "three links quarantined", state);
                else
                    await Task.Delay(TimeSpan.FromSeconds(4)); // a few listings of the inbox after the restart
                Assert.Equal([".hidden-staging"], Directory.EnumerateFileSystemEntries(inbox).Select(Path.GetFileName).ToArray());
                foreach (var name in new[] { "escape", "inside", "dangling.parquet" })
                {
                    Assert.NotNull(new FileInfo(Path.Combine(state, "quarantine", name)).LinkTarget); // moved as the link itself
                    Assert.False(File.Exists(Reason(name) + ".1") || File.Exists(Path.Combine(state, "quarantine", name + ".1.reason.txt")), $"{name} quarantined twice");
                }
                Assert.Contains("symbolic link", File.ReadAllText(Reason("escape")));
                Assert.True(File.Exists(Path.Combine(outside, "etc", "passwd")), "the link's target is left alone");
                Assert.Equal(0, await Sigterm(daemon));
            }
            finally
            {
                if (!daemon.HasExited) daemon.Kill();
            }
        }
        Assert.Equal(3, DaemonState.Load(state)!.QuarantinedDrops.Count);
    }
}
