using System.Threading.Tasks.Dataflow;
using Streaming.Core.Dataflow;
using Streaming.Engine.Scoring.Stages;
using Streaming.Models.Teachers;

namespace Streaming.Engine.Scoring;

/// <summary>
/// The scoring graph, one for <c>score</c>, the daemon, <c>profile</c> and the cluster's workers: read -> decode ->
/// batch -> infer -> sink (<see cref="Stages"/>, a file each under <c>Scoring/Stages/</c>), every stage bounded, so
/// the slowest sets the pace and memory stays bounded however many shards wait. Shards go in with
/// <see cref="SendShardAsync"/>, one after another, for as long as the graph lives (the daemon's case); each scored
/// shard reaches the <see cref="IShardSink"/> once, in the order shards were sent.
/// </summary>
/// <remarks>
/// Batches never span two shards, so a shard's scores depend only on the shard, the batch size, the thread count and
/// the kernels, not on what was scored before it: a shard scored by the daemon has byte-identical scores to the same
/// shard in a batch run. The batches are columns in pooled buffers (<see cref="ImageBatch"/>), reused for the life of
/// the graph, and returned on every path, a failure's included.
/// </remarks>
public sealed class ScoreGraph
{
    private readonly ImageBatchPool _pool;
    private readonly CancellationTokenSource _cts;
    private readonly CancellationToken _external;

    public ScoreGraph(ITeacher teacher, int topP, int batchSize, int decodeWorkers, IShardSink sink, CancellationToken cancellationToken)
    {
        if (topP < 1) throw new ArgumentException("P' (the classes kept per image) must be at least 1");
        if (batchSize < 1) throw new ArgumentException("the inference batch must be at least 1");
        if (decodeWorkers < 1) throw new ArgumentException("decode workers must be at least 1");
        // A batch's pixels are one float array: refuse, before anything runs, a batch too big for one.
        var preprocess = teacher.Spec.Preprocess();
        long floats = (long)batchSize * preprocess.TensorLength;
        if (floats > Array.MaxLength)
            throw new Streaming.Core.StreamingException($"an inference batch of {batchSize:N0} images of {preprocess.TensorLength:N0} values each ({floats:N0}) is more than one buffer holds; use at most {Array.MaxLength / preprocess.TensorLength:N0} for this teacher");
        // The stages stop together: on the caller's cancellation, or when one fails (else the driver would wait
        // forever on a full first stage whose outputs nobody takes).
        _external = cancellationToken;
        _cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var token = _cts.Token;
        TopP = topP;
        _pool = new ImageBatchPool(batchSize, topP);
        Read = new ReadStage(_pool, batchSize, token);
        Decode = new DecodeStage(_pool, preprocess, decodeWorkers, token);
        Batch = new BatchStage(_pool, Decode.SampleLength, token);
        Infer = new InferStage(_pool, teacher, topP, token);
        Sink = new SinkStage(_pool, sink, topP, token);
        Read.LinkTo(Decode);
        Decode.LinkTo(Batch);
        Batch.LinkTo(Infer);
        Infer.LinkTo(Sink);
        foreach (var stage in new Task[] { Read.Completion, Decode.Completion, Batch.Completion, Infer.Completion, Sink.Completion })
            _ = stage.ContinueWith(t => { if (t.IsFaulted) _cts.Cancel(); }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        ScoringTelemetry.Register(this);
        Completion = StoppedTogetherAsync();
    }

    /// <summary>
    /// Ends once every stage has stopped, not just the sink: a cancelled sink ends at once while inference may still
    /// hold the teacher, and whoever awaits the graph then frees that teacher (the daemon does). Whatever a stopped
    /// graph still holds goes back to the pool.
    /// </summary>
    private async Task StoppedTogetherAsync()
    {
        Task[] stages = [Read.Completion, Decode.Completion, Batch.Completion, Infer.Completion, Sink.Completion];
        try
        {
            await Task.WhenAll(stages).ConfigureAwait(false);
        }
        catch (Exception)
        {
            var errors = stages.Where(t => t.IsFaulted).SelectMany(t => t.Exception!.Flatten().InnerExceptions).ToList();
            var cause = errors.FirstOrDefault(e => e is not OperationCanceledException);
            if (cause is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(cause);
            throw errors.FirstOrDefault() ?? new OperationCanceledException("the scoring graph stopped", _cts.Token);
        }
        finally
        {
            _pool.ReturnAll();
            ScoringTelemetry.Unregister(this);
        }
    }

    /// <summary>P': the classes kept per image.</summary>
    public int TopP { get; }

    public ReadStage Read { get; }
    public DecodeStage Decode { get; }
    public BatchStage Batch { get; }
    public InferStage Infer { get; }
    public SinkStage Sink { get; }

    /// <summary>Each stage's counters, in graph order.</summary>
    public IReadOnlyList<StageStats> Stages => [Read.Stats, Decode.Stats, Batch.Stats, Infer.Stats, Sink.Stats];

    /// <summary>Batches the graph holds now (for tests: zero once it has stopped, whatever stopped it).</summary>
    public int BatchesOutstanding => _pool.Outstanding;

    /// <summary>
    /// Completes when every shard sent has reached the sink and every stage has stopped; faults with the error that
    /// stopped the graph (not the cancellations it set off), or is cancelled when only cancellation stopped it.
    /// </summary>
    public Task Completion { get; }

    /// <summary>Waits for <see cref="Completion"/>; the caller's cancellation surfaces as such, whatever the stages saw.</summary>
    public async Task WaitAsync()
    {
        try
        {
            await Completion.ConfigureAwait(false);
        }
        catch (Exception) when (_external.IsCancellationRequested)
        {
            _external.ThrowIfCancellationRequested();
        }
    }

    /// <summary>
    /// Queues one shard (waiting while the graph is full). A shard that cannot be read (corrupt, missing) does not
    /// throw: it reaches the sink with its error.
    /// </summary>
    /// <param name="stopReading">Ends the shard early (it then fails with the error "stopped"): a profile whose time is up.</param>
    public async Task SendShardAsync(string path, string input, object? tag = null, CancellationToken stopReading = default)
    {
        bool sent;
        try
        {
            // A span per shard for OpenTelemetry users (null, and free, when nobody listens); the sink ends it.
            var span = ScoringTelemetry.Source.StartActivity("score shard");
            span?.SetTag("streaming.shard", input);
            span?.SetTag("streaming.path", path);
            sent = await Read.Input.SendAsync(new ShardJob(path, input, tag, stopReading) { Span = span }, _cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!_external.IsCancellationRequested)
        {
            sent = false;
        }
        if (!sent) await StoppedAsync().ConfigureAwait(false);
    }

    /// <summary>The graph stopped taking shards: rethrows the caller's cancellation or the failure of a stage.</summary>
    private async Task StoppedAsync()
    {
        _external.ThrowIfCancellationRequested();
        await WaitAsync().ConfigureAwait(false);
        throw new InvalidOperationException("the scoring graph stopped taking shards");
    }

    /// <summary>No more shards: the graph drains and <see cref="Completion"/> completes.</summary>
    public void Complete() => Read.Complete();

    /// <summary>Stops the graph with an error (what the driver hit, say); <see cref="Completion"/> faults.</summary>
    public void Fault(Exception e) => Read.Fault(e);
}
