using Streaming.Core.Dataflow;

namespace Streaming.Engine.Scoring.Stages;

/// <summary>
/// Batch: the model's input. The images that decoded move to the front of the pixel buffer, contiguous and in shard
/// order (a move only when some image before them did not decode), their rows are noted, and the ones that did not
/// decode are listed, in order, for the sink's quarantine list. A batch with no image left skips the model.
/// </summary>
public sealed class BatchStage : Stage<ImageBatch, ImageBatch>
{
    private readonly ImageBatchPool _pool;
    private readonly int _sampleLength;

    public BatchStage(ImageBatchPool pool, int sampleLength, CancellationToken cancellationToken)
        : base("batch", workers: 1, capacity: 1, cancellationToken)
    {
        _pool = pool;
        _sampleLength = sampleLength;
    }

    protected override async ValueTask ProcessAsync(ImageBatch batch)
    {
        Stats.In(batch.Count);
        int good = 0;
        for (int i = 0; i < batch.Count; i++)
        {
            if (!batch.Decoded[i])
            {
                batch.Quarantined.Add(batch.Bad[i]!);
                continue;
            }
            if (good != i) batch.Pixels.AsSpan(i * _sampleLength, _sampleLength).CopyTo(batch.Pixels.AsSpan(good * _sampleLength, _sampleLength));
            batch.Rows[good++] = i;
        }
        batch.Good = good;
        Stats.Out(batch.Count);
        await EmitAsync(batch).ConfigureAwait(false);
    }

    protected override void Discard(ImageBatch item) => _pool.Return(item);

    protected override void DiscardOutput(ImageBatch item) => _pool.Return(item);
}
