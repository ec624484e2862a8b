using System.Buffers;
using System.Diagnostics;
using System.Threading.Tasks.Dataflow;
using Streaming.Core;
using Streaming.Core.Datasets;
using Streaming.Core.Decode;
using Streaming.Core.Selection;
using Streaming.Core.Shards;
using Streaming.Models.Evaluation;
using Streaming.Core.Dataflow;
using Streaming.Models.Teachers;

namespace Streaming.Engine.Scoring;

/// <summary>What the graph made of one shard: its score rows in shard order, its quarantined images, or the error that failed it.</summary>
public sealed record ShardScores(string Input, object? Tag, List<ScoreRow> Rows, List<QuarantineEntry> Quarantined, string? Error);

/// <summary>
/// The scoring graph, shared by batch <c>score</c> and the daemon: shard reader -> decode + preprocess
/// (parallel, order kept) -> batch -> teacher inference (softmax and top-P' where the model runs) -> collector,
/// which hands each finished shard to a callback. Every block is bounded, so the slowest stage sets the pace
/// and memory stays bounded however many shards wait. Shards go in with <see cref="SendShardAsync"/>, one
/// after another, and may keep coming for as long as the graph lives (the daemon's case).
/// </summary>
/// <remarks>
/// Batches never span two shards: a shard's last partial batch goes to the model when its end arrives. So a
/// shard's scores depend only on the shard, the batch size and the thread count, not on what was scored
/// before it (inference results may move in the last float bits with batch composition: docs/batch-size.md), and a shard scored by
/// the daemon has byte-identical scores to the same shard in a batch run.
/// </remarks>
public sealed class ScoreGraph
{
    private sealed record Item(string Input, object? Tag, string Id, byte[]? Image, bool EndOfShard, string? ShardError, Activity? Span = null);
    private sealed record Decoded(Item Item, float[]? Pixels, QuarantineEntry? Bad);
    private sealed record Scored(Item Item, int[]? Classes, float[]? Probs, QuarantineEntry? Bad);

    private readonly TransformBlock<Item, Decoded> _decode;
    private readonly ActionBlock<Scored[]> _collect;
    private readonly CancellationTokenSource _cts;
    private readonly CancellationToken _token;
    private readonly CancellationToken _external;

    public ScoreGraph(ITeacher teacher, int topP, int batchSize, int decodeWorkers, Func<ShardScores, CancellationToken, Task> onShard,
        CancellationToken cancellationToken)
    {
        if (topP < 1) throw new ArgumentException("--top-p must be at least 1");
        if (batchSize < 1) throw new ArgumentException("--batch must be at least 1");
        if (decodeWorkers < 1) throw new ArgumentException("--decode-workers must be at least 1");
        // The blocks stop together: on the caller's cancellation, or when a later stage fails (else the reader
        // would wait forever on a full first stage whose outputs nobody takes).
        _external = cancellationToken;
        _cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        _token = _cts.Token;
        var preprocess = teacher.Spec.Preprocess();
        int len = preprocess.TensorLength;
        Read = new StageStats("read");
        Decode = new StageStats("decode", decodeWorkers);
        Batch = new StageStats("batch");
        Infer = new StageStats("infer");
        Write = new StageStats("write");
        var token = _token;

        _decode = new TransformBlock<Item, Decoded>(item =>
        {
            Decode.In();
            if (item.EndOfShard || item.Image is null) { Decode.Out(); return new Decoded(item, null, null); }
            return Decode.Time(() =>
            {
                var pixels = ArrayPool<float>.Shared.Rent(len);
                try
                {
                    ImageDecoder.DecodeToTensor(item.Image, preprocess, pixels);
                    Decode.Out();
                    return new Decoded(item, pixels, null);
                }
                catch (InvalidDataException e)
                {
                    ArrayPool<float>.Shared.Return(pixels);
                    var check = ImageDecoder.Check(item.Image);
                    Decode.Out();
                    return new Decoded(item, null, new QuarantineEntry(item.Id, item.Input, check.Reason ?? QuarantineReasons.Corrupt, check.Detail ?? e.Message));
                }
            });
        }, new ExecutionDataflowBlockOptions { MaxDegreeOfParallelism = decodeWorkers, BoundedCapacity = batchSize * 2, EnsureOrdered = true, CancellationToken = token });

        // Batches of batchSize images, cut short at the end of each shard (see remarks).
        var pending = new List<Decoded>(batchSize + 1);
        int images = 0;
        var batch = new TransformManyBlock<Decoded, Decoded[]>(d =>
        {
            Batch.In();
            pending.Add(d);
            if (!d.Item.EndOfShard) images++;
            if (images < batchSize && !d.Item.EndOfShard) return [];
            var full = pending.ToArray();
            pending.Clear();
            images = 0;
            Batch.Out(full.Length);
            return [full];
        }, new ExecutionDataflowBlockOptions { MaxDegreeOfParallelism = 1, BoundedCapacity = 2, CancellationToken = token });
        // (A TransformManyBlock's bound counts its outputs, here whole batches: two ready batches and the one
        // filling, not 2 x batchSize batches, which once let a slow model leave 131k decoded images waiting.)

        var infer = new TransformBlock<Decoded[], Scored[]>(items =>
        {
            Infer.In(items.Length);
            return Infer.Time(() =>
            {
                var result = new Scored[items.Length];
                int good = 0;
                foreach (var d in items) if (d.Pixels is not null) good++;
                if (good == 0)
                {
                    for (int i = 0; i < items.Length; i++) result[i] = new Scored(items[i].Item, null, null, items[i].Bad);
                    Infer.Out(items.Length);
                    return result;
                }
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
                Infer.Out(items.Length);
                return result;
            });
        }, new ExecutionDataflowBlockOptions { MaxDegreeOfParallelism = 1, BoundedCapacity = 2, CancellationToken = token });

        var rows = new List<ScoreRow>();
        var bad = new List<QuarantineEntry>();
        _collect = new ActionBlock<Scored[]>(async items =>
        {
            Write.In(items.Length);
            long start = Stopwatch.GetTimestamp();
            foreach (var s in items)
            {
                if (s.Item.EndOfShard)
                {
                    var done = new ShardScores(s.Item.Input, s.Item.Tag, rows, bad, s.Item.ShardError);
                    if (s.Item.Span is { } span)
                    {
                        span.SetTag("streaming.images", rows.Count);
                        span.SetTag("streaming.quarantined", bad.Count);
                        if (s.Item.ShardError is { } failure) span.SetStatus(ActivityStatusCode.Error, failure);
                        span.Stop();
                    }
                    rows = new List<ScoreRow>();
                    bad = new List<QuarantineEntry>();
                    await onShard(done, token).ConfigureAwait(false);
                    continue;
                }
                if (s.Bad is not null) bad.Add(s.Bad);
                else if (s.Classes is not null) rows.Add(new ScoreRow(s.Item.Id, s.Classes, s.Probs!));
            }
            Write.Busy(Stopwatch.GetTimestamp() - start);
            Write.Out(items.Length);
        }, new ExecutionDataflowBlockOptions { MaxDegreeOfParallelism = 1, BoundedCapacity = 2, CancellationToken = token });

        var link = new DataflowLinkOptions { PropagateCompletion = true };
        _decode.LinkTo(batch, link);
        batch.LinkTo(infer, link);
        infer.LinkTo(_collect, link);
        _ = _collect.Completion.ContinueWith(t => { if (t.IsFaulted) _cts.Cancel(); }, CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        ScoringTelemetry.Register(this);
        _ = _collect.Completion.ContinueWith(_ => ScoringTelemetry.Unregister(this), CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        Decode.QueueDepth = () => _decode.InputCount;
        Batch.QueueDepth = () => batch.OutputCount;
        Infer.QueueDepth = () => infer.InputCount;
        Write.QueueDepth = () => _collect.InputCount;
    }

    public StageStats Read { get; }
    public StageStats Decode { get; }
    public StageStats Batch { get; }
    public StageStats Infer { get; }
    public StageStats Write { get; }
    public IReadOnlyList<StageStats> Stages => [Read, Decode, Batch, Infer, Write];

    /// <summary>Completes when every shard sent has been handed to the callback, or faults with the first error.</summary>
    public Task Completion => _collect.Completion;

    /// <summary>Waits for <see cref="Completion"/>; a failure surfaces as the error that caused it, not as the cancellations it set off.</summary>
    public async Task WaitAsync()
    {
        try
        {
            await _collect.Completion.ConfigureAwait(false);
        }
        catch (Exception) when (_collect.Completion.IsFaulted)
        {
            var errors = _collect.Completion.Exception!.Flatten().InnerExceptions;
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(errors.FirstOrDefault(e => e is not OperationCanceledException) ?? errors[0]);
        }
    }

    /// <summary>
    /// Reads one shard into the graph (waiting whenever the graph is full) and then its end marker. A shard that
    /// cannot be read (corrupt, missing) does not throw: its marker carries the error to the callback, and the
    /// rows read before the error are dropped with it.
    /// </summary>
    /// <param name="stopReading">Ends the shard early (its marker then carries the error "stopped"): a profile whose time is up.</param>
    public async Task SendShardAsync(string path, string input, object? tag = null, CancellationToken stopReading = default)
    {
        try
        {
            string? error = null;
            // A span per shard for OpenTelemetry users (null, and free, when nobody listens); it ends when the shard is collected.
            var span = ScoringTelemetry.Source.StartActivity("score shard");
            span?.SetTag("streaming.shard", input);
            span?.SetTag("streaming.path", path);
            using var read = CancellationTokenSource.CreateLinkedTokenSource(_token, stopReading);
            try
            {
                long start = Stopwatch.GetTimestamp();
                await foreach (var r in ImageShardReader.ReadAsync(path, read.Token).ConfigureAwait(false))
                {
                    read.Token.ThrowIfCancellationRequested(); // a row group is read whole; stop between its rows too
                    Read.In();
                    Read.Busy(Stopwatch.GetTimestamp() - start);
                    await Send(new Item(input, tag, r.Id, r.Image, false, null)).ConfigureAwait(false);
                    start = Stopwatch.GetTimestamp();
                }
            }
            catch (Exception e) when (e is StreamingException or IOException or UnauthorizedAccessException)
            {
                // Whatever stops the read (a corrupt shard, a file gone), the shard ends here with its error, so
                // rows of the next shard never join it.
                error = e is StreamingException ? e.Message : $"{path}: {e.Message}";
            }
            catch (OperationCanceledException) when (stopReading.IsCancellationRequested && !_token.IsCancellationRequested)
            {
                error = "stopped";
            }
            Read.In();
            await Send(new Item(input, tag, "", null, true, error, span)).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!_external.IsCancellationRequested && _collect.Completion.IsFaulted)
        {
            await Stopped().ConfigureAwait(false);
        }
    }

    private async Task Send(Item item)
    {
        long start = Stopwatch.GetTimestamp();
        if (!await _decode.SendAsync(item, _token).ConfigureAwait(false)) await Stopped().ConfigureAwait(false);
        Read.Blocked(Stopwatch.GetTimestamp() - start);
        Read.Out();
    }

    /// <summary>The graph stopped taking items: rethrows the caller's cancellation or the failure of a later stage.</summary>
    private async Task Stopped()
    {
        _external.ThrowIfCancellationRequested();
        try
        {
            await _collect.Completion.ConfigureAwait(false);
        }
        catch (Exception) when (_collect.Completion.IsFaulted)
        {
            throw _collect.Completion.Exception!.Flatten().InnerExceptions.First(e => e is not OperationCanceledException);
        }
        throw new InvalidOperationException("the scoring graph stopped taking shards");
    }

    /// <summary>No more shards: the graph drains and <see cref="Completion"/> completes.</summary>
    public void Complete() => _decode.Complete();

    /// <summary>Stops the graph with an error (what the reader hit, say); <see cref="Completion"/> faults.</summary>
    public void Fault(Exception e) => ((IDataflowBlock)_decode).Fault(e);
}
