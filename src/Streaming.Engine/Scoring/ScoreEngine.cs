using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Streaming.Core;
using Streaming.Core.Datasets;
using Streaming.Core.Options;
using Streaming.Core.Selection;
using Streaming.Engine.Scoring.Stages;
using TorchSharp;
using static TorchSharp.torch;
using Streaming.Models.Teachers;

using Streaming.Models;

namespace Streaming.Engine.Scoring;

/// <summary>
/// Step 2 of the method as a bounded dataflow graph:
/// shard reader -> decode + preprocess (parallel, order kept) -> batch -> teacher inference (softmax and
/// top-P' where the model runs; only P' pairs a row leave it) -> score writer (one Parquet score shard per
/// input shard, written atomically) -> per-class heaps (with -k). Every block is bounded. The unit of work
/// and of resume is the shard: a rerun into the same folder skips shards whose score shard exists, and the
/// selection, a pure function of the scores, comes out the same.
/// </summary>
public static class ScoreEngine
{
    public const string StagesFile = "stages.jsonl";

    /// <param name="teacherOverride">A model to score with instead of opening <see cref="ScoreOptions.Teacher"/> (tests: a
    /// deterministic stand-in; the file is still hashed into scoring.json). The caller keeps ownership.</param>
    public static async Task<ScoreResult> RunAsync(ScoreOptions o, IProgress<(long Scored, long Total, double Rate)>? progress = null,
        Action<string>? log = null, CancellationToken cancellationToken = default, ITeacher? teacherOverride = null)
    {
        log ??= _ => { };
        if (o.K is not null && o.P > o.TopP) throw new OptionException(Knobs.P, o.P, $"must be at most {Knobs.TopP.Key} ({o.TopP}), the classes the scores keep per image");
        using var compute = await Streaming.Models.Compute.Kernels.AcquireAsync(o.Threads, cancellationToken: cancellationToken).ConfigureAwait(false);
        var clock = Stopwatch.StartNew();
        var dataset = DatasetManifest.Load(o.Data);
        var device = TorchDevice.Resolve(o.Device);
        string teacherPath = Teachers.Resolve(o.Teacher);
        using var opened = teacherOverride is null ? Teachers.Open(teacherPath, device, o.TeacherSpec, o.Threads) : null;
        var teacher = teacherOverride ?? opened!;
        var spec = teacher.Spec;
        if (dataset.Classes.Count > 0 && dataset.Classes.Count != spec.NumClasses)
            log($"note: the data names {dataset.Classes.Count} classes, the teacher predicts {spec.NumClasses}; scores use the teacher's");
        int topP = Math.Min(o.TopP, spec.NumClasses);

        string scoresDir = Path.Combine(o.Out, ScoringManifest.ScoresFolder);
        Directory.CreateDirectory(scoresDir);
        // Leftovers of a run that was killed while writing (their names are unique to their writer, so a rerun would
        // not write over them): this run owns the folder.
        foreach (var partial in Directory.EnumerateFiles(scoresDir, "*" + AtomicFile.TempSuffix)) AtomicFile.TryDelete(partial);
        var inputs = dataset.Shards.Select(s => s.File).ToList();
        var order = o.ShardOrder ?? Enumerable.Range(0, inputs.Count).ToList();
        var pending = order.Where(i => !File.Exists(Path.Combine(scoresDir, ScoringManifest.ScoreFileName(inputs[i])))).ToList();
        int skipped = order.Count - pending.Count;
        if (skipped > 0) log($"resuming: {skipped} of {order.Count} shards already scored");
        long total = pending.Sum(i => dataset.Shards[i].Rows);

        var selector = o.K is int k ? new Selector(spec.NumClasses, k, o.P, o.Balance, o.Seed) : null;
        var written = new Dictionary<string, (long Rows, string Sha256)>(StringComparer.Ordinal); // by this run, hashed as written
        var failed = new List<FailedShard>();
        long scored = 0, quarantined = 0;
        var sink = new ShardSink(job => Path.Combine(scoresDir, ScoringManifest.ScoreFileName(job.Input)), selector,
            committed: c =>
            {
                written[c.Shard.Input] = (c.Rows, c.Sha256);
                scored += c.Rows;
                quarantined += c.Quarantined;
                return ValueTask.CompletedTask;
            },
            failed: (job, error) =>
            {
                failed.Add(new FailedShard(job.Input, error));
                log($"shard {job.Input} failed: {error}");
                return ValueTask.CompletedTask;
            });
        var graph = new ScoreGraph(teacher, topP, o.BatchSize, o.DecodeWorkers, sink, cancellationToken);
        var stages = graph.Stages;

        await using var stageLog = new StreamWriter(Path.Combine(o.Out, StagesFile), append: false) { AutoFlush = true };
        using var timer = new Timer(_ =>
        {
            var snapshot = stages.Select(s => s.Snapshot()).ToList();
            lock (stageLog) stageLog.WriteLine(JsonSerializer.Serialize(new { t = Math.Round(clock.Elapsed.TotalSeconds, 2), stages = snapshot }));
            long through = graph.Infer.Stats.Snapshot().ItemsOut;
            progress?.Report((through, total, through / Math.Max(1e-9, clock.Elapsed.TotalSeconds)));
        }, null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));

        // The driver: shards in order; a shard that fails reaches the sink with its error.
        try
        {
            foreach (int shard in pending)
                await graph.SendShardAsync(Path.Combine(o.Data, inputs[shard]), inputs[shard]).ConfigureAwait(false);
            graph.Complete();
        }
        catch (Exception e)
        {
            graph.Fault(e);
        }
        await graph.WaitAsync().ConfigureAwait(false);
        timer.Change(Timeout.Infinite, Timeout.Infinite);
        var final = stages.Select(s => s.Snapshot()).ToList();
        lock (stageLog) stageLog.WriteLine(JsonSerializer.Serialize(new { t = Math.Round(clock.Elapsed.TotalSeconds, 2), stages = final }));
        string bottleneck = final.OrderByDescending(s => s.Utilization).First().Stage;

        // The manifest lists every score shard present, in input order. Shards written by an earlier run are
        // read once here: counted, and folded into the heaps (selection does not depend on the order of rows).
        var entries = new List<ScoredShard>();
        foreach (var input in inputs)
        {
            string file = Path.Combine(scoresDir, ScoringManifest.ScoreFileName(input));
            if (!File.Exists(file)) continue;
            // A shard written by this run was counted and hashed as it was written; one from an earlier run is read again.
            if (!written.TryGetValue(input, out var w))
            {
                long rows = 0;
                await foreach (var group in ScoreShards.ReadBatchesAsync(file, cancellationToken).ConfigureAwait(false))
                {
                    selector?.Offer(group);
                    rows += group.Count;
                }
                w = (rows, Hashing.Sha256File(file));
            }
            string q = file + ".quarantine.jsonl";
            var (n, sha256) = w;
            entries.Add(new ScoredShard(input, Path.GetRelativePath(o.Out, file), n, File.Exists(q) ? File.ReadLines(q).LongCount() : 0, sha256));
        }
        var manifest = new ScoringManifest
        {
            Teacher = Path.GetFullPath(teacherPath),
            TeacherSha256 = Hashing.Sha256File(teacherPath),
            Dataset = Path.GetFullPath(o.Data),
            DatasetManifestSha256 = Hashing.Sha256File(Path.Combine(o.Data, DatasetManifest.FileName)),
            TopP = topP,
            Batch = o.BatchSize,
            Classes = spec.Classes,
            Shards = entries,
            FailedShards = failed,
            Compute = Streaming.Models.Compute.Kernels.Current(o.Threads),
        };
        await manifest.SaveAsync(o.Out, cancellationToken).ConfigureAwait(false);
        await AtomicFile.WriteAsync(Path.Combine(o.Out, DatasetWriter.QuarantineFileName), async stream =>
        {
            await using var text = new StreamWriter(stream, new System.Text.UTF8Encoding(false), 1 << 16, leaveOpen: true);
            foreach (var line in entries.Select(e => Path.Combine(o.Out, e.File) + ".quarantine.jsonl").Where(File.Exists).SelectMany(File.ReadLines))
                await text.WriteLineAsync(line).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);

        SelectionManifest? selection = null;
        if (selector is not null)
        {
            selection = await SelectionWriter.WriteAsync(Path.Combine(o.Out, "selection"), selector, new SelectionManifest
            {
                Classes = spec.Classes,
                Dataset = Path.GetFullPath(o.Data),
                ScoreShards = entries.Select(e => new ScoreShardEntry(e.File, e.Rows, e.Sha256)).ToList(),
            }, cancellationToken).ConfigureAwait(false);
        }
        return new ScoreResult(scored, quarantined, pending.Count - failed.Count, skipped, failed.Select(f => f.Input).ToList(), clock.Elapsed, final, bottleneck, selection);
    }
}
