using Streaming.Core.Scoring;
using Streaming.Core.Options;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Orleans.TestingHost;
using Streaming.Cluster;
using Streaming.Cluster.Client;
using Streaming.Core.Ingest;
using Streaming.Core.Selection;
using Streaming.Engine.Scoring;
using Streaming.Models.IO;
using Streaming.Models.Teachers;
using Xunit;

namespace Streaming.Tests;

/// <summary>
/// The cluster in one process (issue 19): an Orleans test cluster of 3 silos, each with a scoring worker, a deterministic
/// stand-in teacher and 75 small shards. A silo is killed in mid-job; the job completes and its score shards and D-hat
/// are byte-identical to a one-machine score. The grains' fencing and merge rules are tested on their own.
/// </summary>
[Collection(nameof(ProcessState))]
public class ClusterTests : IAsyncLifetime
{
    private readonly TempDir _tmp = new();
    private string Data => _tmp.Sub("u");
    private string TeacherFile => _tmp.Sub("stand-in.onnx");
    private const int Shards = 75;

    public async ValueTask InitializeAsync()
    {
        await Ingestor.RunAsync(ImageSource.Open(TestPaths.MiniIdxTrain), Data, new IngestOptions { Writer = new() { ShardSize = 4 } });
        // The stand-in's "file": only hashed into the job's key and scoring.json.
        await File.WriteAllBytesAsync(TeacherFile, SHA256.HashData("stand-in teacher"u8));
    }

    public ValueTask DisposeAsync()
    {
        _tmp.Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// A deterministic teacher: each image's class scores are a hash of its pixels, so every worker and the local run
    /// agree bit for bit. It sleeps a little per batch so that a job lasts long enough to lose a silo in the middle.
    /// </summary>
    internal sealed class HashTeacher(TimeSpan sleep) : ITeacher
    {
        public ModelSpec Spec { get; } = new("stand-in", 10, 1, 28, [0.5f], [0.25f], Enumerable.Range(0, 10).Select(i => $"c{i}").ToList());

        public void TopK(float[] pixels, int n, int k, Span<int> classes, Span<float> probs)
        {
            if (sleep > TimeSpan.Zero) Thread.Sleep(sleep);
            int size = 28 * 28;
            Span<float> logits = stackalloc float[10];
            Span<int> order = stackalloc int[10];
            for (int i = 0; i < n; i++)
            {
                double sum = 0;
                for (int p = 0; p < size; p++) sum += pixels[i * size + p] * (p % 7 + 1);
                float total = 0;
                for (int c = 0; c < 10; c++)
                {
                    double x = Math.Sin(sum * (c + 1) * 0.001) * 43758.5453;
                    logits[c] = (float)Math.Exp(3 * (x - Math.Floor(x)));
                    total += logits[c];
                    order[c] = c;
                }
                var l = logits.ToArray();
                var o = order.ToArray();
                Array.Sort(o, (a, b) => l[b].CompareTo(l[a]) is var cmp && cmp != 0 ? cmp : a.CompareTo(b));
                for (int j = 0; j < k; j++)
                {
                    classes[i * k + j] = o[j];
                    probs[i * k + j] = l[o[j]] / total;
                }
            }
        }

        public void Dispose()
        {
        }
    }

    private sealed class HashTeachers(TimeSpan sleep) : ITeacherSource
    {
        public ITeacher Open(string path, string device, int threads, ModelSpec? spec = null) => new HashTeacher(sleep);
    }

    private ScoreOptions Options(string output) => new()
    {
        Teacher = TeacherFile, Data = Data, Out = output,
        Scoring = new ScoringSpec { TopP = 5, Batch = 8, DecodeWorkers = 1, K = 8, P = 2, Compute = new ComputeSpec { Threads = 1 } },
    };

    private static async Task<InProcessTestCluster> StartClusterAsync(string state, TimeSpan sleep)
    {
        var builder = new InProcessTestClusterBuilder(3);
        builder.ConfigureHost(h => h.Logging.SetMinimumLevel(LogLevel.Warning));
        builder.ConfigureSilo((options, silo) =>
        {
            ClusterHosting.AddFolderStorage(silo, state);
            ClusterNode.AddWorker(silo.Services, new WorkerOptions { Id = $"worker-{options.SiloName}", DecodeWorkers = 1, Prefetch = 2, PartialEveryShards = 4 },
                new HashTeachers(sleep));
        });
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }

    [Trait(Traits.Asserts, Traits.BitIdentity)]
    [Fact]
    public async Task ThreeSilos_OneKilledMidJob_TheJobCompletes_AndItsOutputIsByteIdenticalToOneMachine()
    {
        string local = _tmp.Sub("local"), remote = _tmp.Sub("cluster");
        using (var teacher = new HashTeacher(TimeSpan.Zero))
            await ScoreEngine.RunAsync(Options(local), teacherOverride: teacher);

        // An orphan of a worker that died between writing a score shard and committing it (here: junk), and a
        // temporary file of one cut off while writing: the first is overwritten, the second cleaned up.
        string scores = Path.Combine(remote, ScoringManifest.ScoresFolder);
        Directory.CreateDirectory(scores);
        File.WriteAllText(Path.Combine(scores, "score-shard-00003.parquet"), "orphan");
        File.WriteAllText(Path.Combine(scores, "score-shard-00004.parquet.1234-abcdef01.partial"), "cut off");
        // An hour old: younger ones are left alone (their writer may be at work).
        File.SetLastWriteTimeUtc(Path.Combine(scores, "score-shard-00004.parquet.1234-abcdef01.partial"), DateTime.UtcNow.AddHours(-1));

        await using var cluster = await StartClusterAsync(_tmp.Sub("state"), TimeSpan.FromMilliseconds(60));
        var spec = ClusterJobs.SpecFor(Options(remote), "native", leaseSeconds: 3);
        var lines = new List<string>();
        var run = ClusterJobs.RunAsync(cluster.Client, spec, new HashTeacher(TimeSpan.Zero).Spec.Classes, log: l => { lock (lines) lines.Add(l); });

        var job = cluster.Client.GetGrain<IJobGrain>(spec.Key);
        var victim = cluster.Silos[1];
        string victimWorker = $"worker-{victim.Name}";
        // Kill the silo once its worker has committed some shards and holds leases.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), "the victim's worker never got going");
            Assert.False(run.IsCompleted, "the job ended before the silo could be killed");
            var s = await job.StatusAsync();
            if (s?.Workers.FirstOrDefault(w => w.Worker == victimWorker) is { Shards: >= 2, Leased: >= 1 }) break;
            await Task.Delay(50);
        }
        int doneAtKill = (await job.StatusAsync())!.Done;
        await cluster.KillSiloAsync(victim);

        var result = await run.WaitAsync(TimeSpan.FromSeconds(120));
        Assert.True(doneAtKill < Shards, "the kill was not in mid-job");
        Assert.Equal(Shards, result.Status.Done);
        Assert.Equal(0, result.Status.Failed);
        Assert.True(result.Status.Workers.Count(w => w.Shards > 0) >= 2, "more than one worker scored");

        foreach (var file in Directory.GetFiles(Path.Combine(local, ScoringManifest.ScoresFolder), "*.parquet"))
            Assert.True(File.ReadAllBytes(file).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(scores, Path.GetFileName(file)))), $"{Path.GetFileName(file)} differs");
        Assert.Equal(File.ReadAllBytes(Path.Combine(local, "selection", SelectionManifest.DhatFileName)), File.ReadAllBytes(Path.Combine(remote, "selection", SelectionManifest.DhatFileName)));
        var a = SelectionJson(local);
        var b = SelectionJson(remote);
        Assert.Equal(a, b);
        Assert.Empty(Directory.GetFiles(scores, "*.partial"));
        // A worker still writing its last partial when the job finished finds the job closed and removes it itself.
        string partials = Path.Combine(remote, PartialFiles.Folder);
        var wait = System.Diagnostics.Stopwatch.StartNew();
        while (Directory.Exists(partials) && wait.Elapsed < TimeSpan.FromSeconds(20)) await Task.Delay(100);
        Assert.False(Directory.Exists(partials), "partials are removed once D-hat is written; left: "
            + (Directory.Exists(partials) ? string.Join(", ", Directory.EnumerateFileSystemEntries(partials).Select(Path.GetFileName)) : ""));
        Assert.Contains(lines, l => l.StartsWith("merging", StringComparison.Ordinal));
    }

    private static string SelectionJson(string folder) => File.ReadAllText(Path.Combine(folder, "selection", SelectionManifest.FileName));

    [Fact]
    public async Task AJobWhoseShardNamesLeaveItsFolders_IsRefusedBySubmitAndAppend()
    {
        await using var cluster = await StartClusterAsync(_tmp.Sub("state-names"), TimeSpan.Zero);
        // A client of other making could send any names; the grain checks them (the CLI refuses them before, and so does each worker).
        var spec = ClusterJobs.SpecFor(Options(_tmp.Sub("names")), "avx2", leaseSeconds: 1);
        foreach (var bad in new[] { "../outside.parquet", "/etc/passwd", "a/../../b.parquet" })
        {
            var evil = spec with { Key = spec.Key + "-" + Math.Abs(bad.GetHashCode(StringComparison.Ordinal)), Shards = [new ShardInput(bad, 1)] };
            var refused = await Assert.ThrowsAnyAsync<Exception>(() => cluster.Client.GetGrain<IJobGrain>(evil.Key).SubmitAsync(evil));
            Assert.Contains("a job's shard is refused", refused.Message);
            Assert.Null(await cluster.Client.GetGrain<IJobGrain>(evil.Key).StatusAsync());
        }
        var job = cluster.Client.GetGrain<IJobGrain>(spec.Key);
        await job.SubmitAsync(spec);
        var appended = await Assert.ThrowsAnyAsync<Exception>(() => job.AppendAsync([new ShardInput("../x.parquet", 1)]));
        Assert.Contains("contains '..'", appended.Message);
    }

    [Fact]
    public async Task Fencing_AStaleWorkersCommit_IsRefused_AndAWorkerWithOtherKernelsIsRefusedInOneLine()
    {
        await using var cluster = await StartClusterAsync(_tmp.Sub("state-fence"), TimeSpan.Zero);
        // A job pinned to an ISA no worker here runs, so the silos' own workers stay out of it (and are refused).
        var spec = ClusterJobs.SpecFor(Options(_tmp.Sub("fence")), "avx2", leaseSeconds: 1);
        var job = cluster.Client.GetGrain<IJobGrain>(spec.Key);
        await job.SubmitAsync(spec);
        var a = new WorkerInfo("a", "host-a", 1, "avx2", "kernels-1", "{}");
        var b = new WorkerInfo("b", "host-b", 2, "avx2", "kernels-1", "{}");
        var lease = (await job.LeaseAsync(a, 1)).Leases.Single();

        // a stalls past its expiry; b takes the shard under a new epoch.
        await Task.Delay(1500);
        var taken = (await job.LeaseAsync(b, 1)).Leases.Single();
        Assert.Equal(lease.Shard, taken.Shard);
        Assert.NotEqual(lease.Epoch, taken.Epoch);
        Assert.Equal([lease.Shard], await job.HeartbeatAsync("a", [new ShardEpoch(lease.Shard, lease.Epoch)]));
        string? refused = await job.CommitAsync("a", new ShardDone(lease.Shard, lease.Epoch, "scores/x.parquet", "aaaa", 4, 0, null));
        Assert.NotNull(refused);
        Assert.StartsWith("stale lease on shard", refused);
        Assert.Null(await job.CommitAsync("b", new ShardDone(taken.Shard, taken.Epoch, "scores/x.parquet", "bbbb", 4, 0, null)));
        // The same commit again is harmless; the stale one stays refused; the record holds b's.
        Assert.Null(await job.CommitAsync("b", new ShardDone(taken.Shard, taken.Epoch, "scores/x.parquet", "bbbb", 4, 0, null)));
        Assert.NotNull(await job.CommitAsync("a", new ShardDone(lease.Shard, lease.Epoch, "scores/x.parquet", "aaaa", 4, 0, null)));
        var record = (await job.RecordAsync())!;
        Assert.Equal("bbbb", record.Shards[lease.Shard].Sha256);

        // (A partial naming a's stale epoch is left out of the merge: TheMerge_... tests that.)

        // Another kernel set: refused, in one line that says what to do.
        var c = new WorkerInfo("c", "host-c", 3, "avx2", "kernels-2", "{}");
        var answer = await job.LeaseAsync(c, 1);
        Assert.Empty(answer.Leases);
        Assert.Contains("differ from the job's", answer.Refused);
        var d = new WorkerInfo("d", "host-d", 4, "avx512_core", "kernels-1", "{}");
        Assert.Contains("start it with --isa avx2", (await job.LeaseAsync(d, 1)).Refused);
        // The silos' own workers were refused too (they run native kernels), and the job says so.
        await Task.Delay(1500);
        Assert.Contains((await job.StatusAsync())!.Refusals, r => r.Contains("the job pins isa avx2", StringComparison.Ordinal));

        // SIGTERM's hand-back: b's other leases return to pending at once.
        var more = (await job.LeaseAsync(b, 3)).Leases;
        Assert.Equal(3, more.Count);
        Assert.Equal(3, await job.ReleaseAsync("b"));
        Assert.Equal(0, (await job.StatusAsync())!.Leased);
    }

    [Fact]
    public async Task TheMerge_APartialDeliveredTwice_ChangesNothing_AndStalePartialsAreLeftOut()
    {
        string output = _tmp.Sub("merge");
        using (var teacher = new HashTeacher(TimeSpan.Zero))
            await ScoreEngine.RunAsync(Options(output), teacherOverride: teacher);
        var scoring = ScoringManifest.Load(output);
        // Two partials over disjoint halves, as two workers would checkpoint them.
        var halves = new[] { scoring.Shards.Take(40).ToList(), scoring.Shards.Skip(40).ToList() };
        Directory.CreateDirectory(Path.Combine(output, "partials"));
        for (int h = 0; h < 2; h++)
        {
            var part = new Selector(10, 8, 2);
            foreach (var s in halves[h])
                await foreach (var batch in ScoreShards.ReadBatchesAsync(Path.Combine(output, s.File))) part.Offer(batch);
            await PartialFiles.WriteAsync(output, Path.Combine("partials", $"p{h}"), part);
        }
        await using var cluster = await StartClusterAsync(_tmp.Sub("state-merge"), TimeSpan.Zero);
        var grain = cluster.Client.GetGrain<IClassMergeGrain>("merge-test/0");
        var once = await grain.MergeAsync(output, 0, 10, ["partials/p0", "partials/p1"]);
        var keptOnce = await grain.KeptAsync(3);
        var twice = await grain.MergeAsync(output, 0, 10, ["partials/p1", "partials/p0", "partials/p0"]);
        var keptTwice = await grain.KeptAsync(3);
        Assert.Equal(once.Rows, twice.Rows);
        Assert.Equal(once.TopOne, twice.TopOne);
        Assert.Equal(keptOnce.Ids, keptTwice.Ids);
        Assert.Equal(keptOnce.Scores, keptTwice.Scores);
        Assert.Equal(scoring.Rows, once.Rows);

        // Through the submitter's merge, with a stale partial (an epoch the job does not hold) among the good ones:
        // D-hat equals the one-machine selection.
        var records = scoring.Shards.Select(s => new ShardRecord { Status = ShardStatus.Done, Epoch = 7, ScoreFile = s.File, Sha256 = s.Sha256, Rows = s.Rows }).ToList();
        var spec = ClusterJobs.SpecFor(Options(output), "native", 30);
        var partials = new List<PartialInfo>
        {
            new("w0", "partials/p0", Enumerable.Range(0, 40).Select(i => new ShardEpoch(i, 7)).ToList()),
            new("w1", "partials/p1", Enumerable.Range(40, Shards - 40).Select(i => new ShardEpoch(i, 7)).ToList()),
            new("stale", "partials/p0", Enumerable.Range(0, Shards).Select(i => new ShardEpoch(i, 6)).ToList()),
        };
        var merged = await ClusterJobs.MergeAsync(cluster.Client, new JobRecord(spec, records, partials, null), 10, _ => { }, CancellationToken.None);
        var reference = await HeapCheckpointRoundTrip(output, scoring);
        for (int c = 0; c < 10; c++) Assert.Equal(reference.Kept(c), merged.Kept(c));
        Assert.Equal(reference.Rows, merged.Rows);
        Assert.Equal(reference.TopOneCounts(), merged.TopOneCounts());
    }

    private static async Task<Selector> HeapCheckpointRoundTrip(string output, ScoringManifest scoring)
    {
        var all = new Selector(10, 8, 2);
        foreach (var s in scoring.Shards)
            await foreach (var batch in ScoreShards.ReadBatchesAsync(Path.Combine(output, s.File))) all.Offer(batch);
        return all;
    }
}
