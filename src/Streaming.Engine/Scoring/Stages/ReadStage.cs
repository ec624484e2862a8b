using Streaming.Core;
using Streaming.Core.Dataflow;
using Streaming.Core.Shards;

namespace Streaming.Engine.Scoring.Stages;

/// <summary>
/// Read: a shard's ids and encoded images (only those two columns), row group by row group, into batches of up to
/// the inference batch size. A shard's last batch may be short, and batches never span shards, so a shard's scores
/// depend on the shard, the batch size and the thread count only, not on what was scored before it. A shard that
/// cannot be read to its end does not throw: its last batch carries the error, and the sink drops its rows.
/// </summary>
public sealed class ReadStage : Stage<ShardJob, ImageBatch>
{
    private readonly ImageBatchPool _pool;
    private readonly int _batchSize;
    // The column buffers, one set for the stage's life: a shard costs no buffer once the largest row group was read.
    private readonly ShardColumnBuffers _buffers = new();

    public ReadStage(ImageBatchPool pool, int batchSize, CancellationToken cancellationToken)
        : base("read", workers: 1, capacity: 2, cancellationToken)
    {
        _pool = pool;
        _batchSize = batchSize;
        _ = Completion.ContinueWith(_ => _buffers.Dispose(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    protected override async ValueTask ProcessAsync(ShardJob job)
    {
        var batch = _pool.Rent(job, 0);
        string? error = null;
        using var reading = CancellationTokenSource.CreateLinkedTokenSource(CancellationToken, job.StopReading);
        try
        {
            await using var columns = await ShardImageColumns.OpenAsync(job.Path, _buffers, reading.Token).ConfigureAwait(false);
            long row = 0;
            for (int g = 0; g < columns.RowGroupCount; g++)
            {
                await columns.ReadRowGroupAsync(g, reading.Token).ConfigureAwait(false);
                Stats.In(columns.Count);
                for (int i = 0; i < columns.Count; i++)
                {
                    batch.Add(columns.Ids[i], columns.Image(i));
                    row++;
                    if (batch.Count < _batchSize) continue;
                    reading.Token.ThrowIfCancellationRequested(); // a row group is read whole; stop between its batches too
                    await EmitBatchAsync(batch).ConfigureAwait(false);
                    batch = _pool.Rent(job, row);
                }
            }
        }
        catch (Exception e) when (e is StreamingException or IOException or UnauthorizedAccessException)
        {
            // Whatever stops the read (a corrupt shard, a file gone), the shard ends here with its error.
            error = e is StreamingException ? e.Message : $"{job.Path}: {e.Message}";
        }
        catch (OperationCanceledException) when (job.StopReading.IsCancellationRequested && !CancellationToken.IsCancellationRequested)
        {
            error = "stopped";
        }
        catch
        {
            _pool.Return(batch);
            throw;
        }
        batch.LastOfShard = true;
        batch.ShardError = error;
        await EmitBatchAsync(batch).ConfigureAwait(false);
    }

    private ValueTask EmitBatchAsync(ImageBatch batch)
    {
        Stats.Out(batch.Count);
        return EmitAsync(batch);
    }

    protected override void DiscardOutput(ImageBatch item) => _pool.Return(item);
}
