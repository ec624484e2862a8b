using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Threading.Tasks.Dataflow;
using Streaming.Core;
using Streaming.Core.Datasets;
using Streaming.Core.Decode;
using Streaming.Core.Selection;
using Streaming.Core.Shards;
using Streaming.Models.Evaluation;
using Streaming.Models.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace Streaming.Models.Scoring;

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

    private sealed record Item(int Shard, string Id, byte[]? Image, bool EndOfShard, string? ShardError);
    private sealed record Decoded(Item Item, float[]? Pixels, QuarantineEntry? Bad);
    private sealed record Scored(Item Item, int[]? Classes, float[]? Probs, QuarantineEntry? Bad);

    public static async Task<ScoreResult> RunAsync(ScoreOptions o, IProgress<(long Scored, long Total, double Rate)>? progress = null,
        Action<string>? log = null, CancellationToken cancellationToken = default)
    {
        log ??= _ => { };
        if (o.TopP < 1) throw new ArgumentException("--top-p must be at least 1");
        if (o.BatchSize < 1) throw new ArgumentException("--batch must be at least 1");
        if (o.DecodeWorkers < 1) throw new ArgumentException("--decode-workers must be at least 1");
        if (o.K is < 1) throw new ArgumentException("-k must be at least 1");
        if (o.K is not null && (o.P < 1 || o.P > o.TopP)) throw new ArgumentException($"-p must be between 1 and --top-p ({o.TopP})");
        if (o.Threads is int t) torch.set_num_threads(t);
        var clock = Stopwatch.StartNew();
        var dataset = DatasetManifest.Load(o.Data);
        var device = TorchDevice.Resolve(o.Device);
        string teacherPath = o.Teacher.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase) ? o.Teacher : ModelFile.Resolve(o.Teacher);
        using var teacher = Teachers.Open(teacherPath, device, o.TeacherSpec, o.Threads);
        var spec = teacher.Spec;
        if (dataset.Classes.Count > 0 && dataset.Classes.Count != spec.NumClasses)
            log($"note: the data names {dataset.Classes.Count} classes, the teacher predicts {spec.NumClasses}; scores use the teacher's");
        int topP = Math.Min(o.TopP, spec.NumClasses);
        var preprocess = Evaluator.Preprocess(spec);

        string scoresDir = Path.Combine(o.Out, ScoringManifest.ScoresFolder);
        Directory.CreateDirectory(scoresDir);
        var inputs = dataset.Shards.Select(s => s.File).ToList();
        var order = o.ShardOrder ?? Enumerable.Range(0, inputs.Count).ToList();
        static string ScoreName(string input) => "score-" + Path.GetFileNameWithoutExtension(input) + ".parquet";
        var pending = order.Where(i => !File.Exists(Path.Combine(scoresDir, ScoreName(inputs[i])))).ToList();
        int skipped = order.Count - pending.Count;
        if (skipped > 0) log($"resuming: {skipped} of {order.Count} shards already scored");
        long total = pending.Sum(i => dataset.Shards[i].Rows);

        // Stages and their counters.
        var readStats = new StageStats("read");
        var decodeStats = new StageStats("decode", o.DecodeWorkers);
        var batchStats = new StageStats("batch");
        var inferStats = new StageStats("infer");
        var writeStats = new StageStats("write");
        var stages = new[] { readStats, decodeStats, batchStats, inferStats, writeStats };
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var token = cts.Token;
        int len = preprocess.TensorLength;

        var decode = new TransformBlock<Item, Decoded>(item =>
        {
            decodeStats.In();
            if (item.EndOfShard || item.Image is null) { decodeStats.Out(); return new Decoded(item, null, null); }
            return decodeStats.Time(() =>
            {
                var pixels = ArrayPool<float>.Shared.Rent(len);
                try
                {
                    ImageDecoder.DecodeToTensor(item.Image, preprocess, pixels);
                    decodeStats.Out();
                    return new Decoded(item, pixels, null);
                }
                catch (InvalidDataException e)
                {
                    ArrayPool<float>.Shared.Return(pixels);
                    var check = ImageDecoder.Check(item.Image);
                    decodeStats.Out();
                    return new Decoded(item, null, new QuarantineEntry(item.Id, inputs[item.Shard], check.Reason ?? QuarantineReasons.Corrupt, check.Detail ?? e.Message));
                }
            });
        }, new ExecutionDataflowBlockOptions { MaxDegreeOfParallelism = o.DecodeWorkers, BoundedCapacity = o.BatchSize * 2, EnsureOrdered = true, CancellationToken = token });
        var batch = new BatchBlock<Decoded>(o.BatchSize, new GroupingDataflowBlockOptions { BoundedCapacity = o.BatchSize * 2, CancellationToken = token });
        var infer = new TransformBlock<Decoded[], Scored[]>(items =>
        {
            // The batcher does no work of its own: count what passes through it here, where its output arrives.
            batchStats.In(items.Length);
            batchStats.Out(items.Length);
            inferStats.In(items.Length);
            return inferStats.Time(() =>
            {
                var result = new Scored[items.Length];
                int good = 0;
                foreach (var d in items) if (d.Pixels is not null) good++;
                if (good > 0)
                {
                    var buffer = ArrayPool<float>.Shared.Rent(good * len);
                    try
                    {
                        int g = 0;
                        foreach (var d in items)
                            if (d.Pixels is not null)
                            {
                                Array.Copy(d.Pixels, 0, buffer, (long)g * len, len);
                                ArrayPool<float>.Shared.Return(d.Pixels);
                                g++;
                            }
                        var (classes, top) = teacher.TopK(buffer, good, topP);
                        g = 0;
                        for (int i = 0; i < items.Length; i++)
                        {
                            var d = items[i];
                            if (d.Pixels is null) { result[i] = new Scored(d.Item, null, null, d.Bad); continue; }
                            result[i] = new Scored(d.Item, classes[(g * topP)..((g + 1) * topP)], top[(g * topP)..((g + 1) * topP)], null);
                            g++;
                        }
                    }
                    finally
                    {
                        ArrayPool<float>.Shared.Return(buffer);
                    }
                }
                else
                {
                    for (int i = 0; i < items.Length; i++) result[i] = new Scored(items[i].Item, null, null, items[i].Bad);
                }
                inferStats.Out(items.Length);
                return result;
            });
        }, new ExecutionDataflowBlockOptions { MaxDegreeOfParallelism = 1, BoundedCapacity = 2, CancellationToken = token });

        var selector = o.K is int k ? new Selector(spec.NumClasses, k, o.P, o.Balance, o.Seed) : null;
        var rowsWritten = new Dictionary<string, long>(StringComparer.Ordinal);
        var failed = new List<FailedShard>();
        var rows = new List<ScoreRow>();
        var bad = new List<QuarantineEntry>();
        long scored = 0, quarantined = 0;
        var write = new ActionBlock<Scored[]>(async items =>
        {
            writeStats.In(items.Length);
            long start = Stopwatch.GetTimestamp();
            foreach (var s in items)
            {
                if (s.Item.EndOfShard)
                {
                    string input = inputs[s.Item.Shard];
                    if (s.Item.ShardError is not null)
                    {
                        failed.Add(new FailedShard(input, s.Item.ShardError));
                        log($"shard {input} failed: {s.Item.ShardError}");
                    }
                    else
                    {
                        string file = Path.Combine(scoresDir, ScoreName(input));
                        string quarantineFile = file + ".quarantine.jsonl";
                        if (bad.Count > 0) await File.WriteAllLinesAsync(quarantineFile, bad.Select(b => JsonSerializer.Serialize(b)), token).ConfigureAwait(false);
                        else if (File.Exists(quarantineFile)) File.Delete(quarantineFile);
                        await ScoreShards.WriteAsync(file, rows, cancellationToken: token).ConfigureAwait(false);
                        if (selector is not null) foreach (var r in rows) selector.Offer(r);
                        rowsWritten[input] = rows.Count;
                        scored += rows.Count;
                        quarantined += bad.Count;
                    }
                    rows = new List<ScoreRow>();
                    bad.Clear();
                    continue;
                }
                if (s.Bad is not null) bad.Add(s.Bad);
                else if (s.Classes is not null) rows.Add(new ScoreRow(s.Item.Id, s.Classes, s.Probs!));
            }
            writeStats.Busy(Stopwatch.GetTimestamp() - start);
            writeStats.Out(items.Length);
        }, new ExecutionDataflowBlockOptions { MaxDegreeOfParallelism = 1, BoundedCapacity = 2, CancellationToken = token });

        var link = new DataflowLinkOptions { PropagateCompletion = true };
        decode.LinkTo(batch, link);
        batch.LinkTo(infer, link);
        infer.LinkTo(write, link);
        _ = write.Completion.ContinueWith(t => { if (t.IsFaulted) cts.Cancel(); }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        decodeStats.QueueDepth = () => decode.InputCount;
        batchStats.QueueDepth = () => batch.OutputCount;
        inferStats.QueueDepth = () => infer.InputCount;
        writeStats.QueueDepth = () => write.InputCount;

        await using var stageLog = new StreamWriter(Path.Combine(o.Out, StagesFile), append: false) { AutoFlush = true };
        using var timer = new Timer(_ =>
        {
            var snapshot = stages.Select(s => s.Snapshot()).ToList();
            lock (stageLog) stageLog.WriteLine(JsonSerializer.Serialize(new { t = Math.Round(clock.Elapsed.TotalSeconds, 2), stages = snapshot }));
            long through = inferStats.Snapshot().ItemsOut;
            progress?.Report((through, total, through / Math.Max(1e-9, clock.Elapsed.TotalSeconds)));
        }, null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));

        // The reader: shards in order, one end-of-shard marker each (carrying the error of a shard that failed).
        async Task Send(Item item)
        {
            long start = Stopwatch.GetTimestamp();
            if (!await decode.SendAsync(item, token).ConfigureAwait(false)) throw new OperationCanceledException(token);
            readStats.Blocked(Stopwatch.GetTimestamp() - start);
            readStats.Out();
        }
        Exception? readError = null;
        try
        {
            foreach (int shard in pending)
            {
                string? error = null;
                try
                {
                    long start = Stopwatch.GetTimestamp();
                    await foreach (var r in ImageShardReader.ReadAsync(Path.Combine(o.Data, inputs[shard]), token).ConfigureAwait(false))
                    {
                        readStats.In();
                        readStats.Busy(Stopwatch.GetTimestamp() - start);
                        await Send(new Item(shard, r.Id, r.Image, false, null)).ConfigureAwait(false);
                        start = Stopwatch.GetTimestamp();
                    }
                }
                catch (StreamingException e)
                {
                    error = e.Message;
                }
                await Send(new Item(shard, "", null, true, error)).ConfigureAwait(false);
            }
            decode.Complete();
        }
        catch (Exception e)
        {
            readError = e;
            ((IDataflowBlock)decode).Fault(e);
        }
        try
        {
            await write.Completion.ConfigureAwait(false);
        }
        catch (Exception) when (write.Completion.IsFaulted)
        {
            throw write.Completion.Exception!.Flatten().InnerExceptions.First(e => e is not OperationCanceledException);
        }
        catch (Exception) when (readError is not null)
        {
        }
        if (readError is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(readError);
        timer.Change(Timeout.Infinite, Timeout.Infinite);
        var final = stages.Select(s => s.Snapshot()).ToList();
        lock (stageLog) stageLog.WriteLine(JsonSerializer.Serialize(new { t = Math.Round(clock.Elapsed.TotalSeconds, 2), stages = final }));
        string bottleneck = final.OrderByDescending(s => s.Utilization).First().Stage;

        // The manifest lists every score shard present, in input order. Shards written by an earlier run are
        // read once here: counted, and folded into the heaps (selection does not depend on the order of rows).
        var entries = new List<ScoredShard>();
        foreach (var input in inputs)
        {
            string file = Path.Combine(scoresDir, ScoreName(input));
            if (!File.Exists(file)) continue;
            if (!rowsWritten.TryGetValue(input, out long n))
                await foreach (var group in ScoreShards.ReadBatchesAsync(file, cancellationToken).ConfigureAwait(false))
                {
                    selector?.Offer(group);
                    n += group.Count;
                }
            string q = file + ".quarantine.jsonl";
            entries.Add(new ScoredShard(input, Path.GetRelativePath(o.Out, file), n, File.Exists(q) ? File.ReadLines(q).LongCount() : 0, Hashing.Sha256File(file)));
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
        };
        await File.WriteAllTextAsync(Path.Combine(o.Out, ScoringManifest.FileName),
            JsonSerializer.Serialize(manifest, new JsonSerializerOptions { WriteIndented = true }) + "\n", cancellationToken).ConfigureAwait(false);
        await File.WriteAllLinesAsync(Path.Combine(o.Out, DatasetWriter.QuarantineFileName),
            entries.Select(e => Path.Combine(o.Out, e.File) + ".quarantine.jsonl").Where(File.Exists).SelectMany(File.ReadLines), cancellationToken).ConfigureAwait(false);

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
