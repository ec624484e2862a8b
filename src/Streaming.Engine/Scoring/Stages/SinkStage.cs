using Streaming.Core.Dataflow;

namespace Streaming.Engine.Scoring.Stages;

/// <summary>
/// The graph's last stage: each shard's batches, in order, into one <see cref="ShardScores"/>, handed to the
/// <see cref="IShardSink"/> when the shard's last batch arrives. Every batch goes back to the pool here.
/// </summary>
public sealed class SinkStage : Stage<ImageBatch>
{
    private readonly ImageBatchPool _pool;
    private readonly IShardSink _sink;
    private readonly ShardScores _shard;
    private bool _started;

    public SinkStage(ImageBatchPool pool, IShardSink sink, int topP, CancellationToken cancellationToken)
        : base("sink", workers: 1, capacity: 2, cancellationToken)
    {
        _pool = pool;
        _sink = sink;
        _shard = new ShardScores(topP);
    }

    protected override async ValueTask ProcessAsync(ImageBatch batch)
    {
        int count = batch.Count;
        Stats.In(count);
        bool last;
        string? error;
        try
        {
            if (!_started)
            {
                _shard.Start(batch.Shard);
                _started = true;
            }
            _shard.Append(batch);
            (last, error) = (batch.LastOfShard, batch.ShardError);
        }
        finally
        {
            _pool.Return(batch);
        }
        if (last)
        {
            _started = false;
            if (error is not null) _shard.Fail(error);
            await _sink.CommitAsync(_shard, CancellationToken).ConfigureAwait(false);
            if (_shard.Shard.Span is { } span)
            {
                span.SetTag("streaming.images", _shard.Count);
                span.SetTag("streaming.quarantined", _shard.Quarantined.Count);
                if (error is not null) span.SetStatus(System.Diagnostics.ActivityStatusCode.Error, error);
                span.Stop();
            }
        }
        Stats.Out(count);
    }

    protected override void Discard(ImageBatch item) => _pool.Return(item);
}
