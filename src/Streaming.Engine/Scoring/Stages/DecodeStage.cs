using System.Buffers;
using System.Diagnostics;
using Streaming.Core.Dataflow;
using Streaming.Core.Datasets;
using Streaming.Core.Decode;

namespace Streaming.Engine.Scoring.Stages;

/// <summary>
/// Decode: each image of a batch decoded, resized and normalized as the model expects (SkiaSharp), straight into its
/// slot of the batch's pooled pixel buffer: the only copy of the pixels before the model. The stage's workers share
/// each batch's images. An image that does not decode is checked for why (truncated, corrupt, not an image, ...)
/// and quarantined; it never stops the shard.
/// </summary>
public sealed class DecodeStage : Stage<ImageBatch, ImageBatch>
{
    private readonly ImageBatchPool _pool;
    private readonly PreprocessOptions _preprocess;
    private readonly ParallelOptions _parallel;

    public DecodeStage(ImageBatchPool pool, PreprocessOptions preprocess, int workers, CancellationToken cancellationToken)
        : base("decode", workers, capacity: 1, cancellationToken)
    {
        _pool = pool;
        _preprocess = preprocess;
        _parallel = new ParallelOptions { MaxDegreeOfParallelism = workers, CancellationToken = cancellationToken };
    }

    /// <summary>Floats of one image at the model's input size.</summary>
    public int SampleLength => _preprocess.TensorLength;

    protected override bool ReportsBusy => true;

    protected override async ValueTask ProcessAsync(ImageBatch batch)
    {
        Stats.In(batch.Count);
        if (batch.Count > 0)
        {
            int length = SampleLength;
            batch.RentPixels(length);
            if (Stats.Workers == 1)
            {
                for (int i = 0; i < batch.Count; i++) DecodeOne(batch, i, length);
            }
            else
            {
                Parallel.For(0, batch.Count, _parallel, i => DecodeOne(batch, i, length));
            }
            batch.ReturnEncoded();
        }
        Stats.Out(batch.Count);
        await EmitAsync(batch).ConfigureAwait(false);
    }

    private void DecodeOne(ImageBatch batch, int i, int length)
    {
        long start = Stopwatch.GetTimestamp();
        var image = batch.Image(i);
        try
        {
            ImageDecoder.DecodeToTensor(image, _preprocess, batch.Pixels.AsSpan(i * length, length));
            batch.Decoded[i] = true;
        }
        catch (InvalidDataException e)
        {
            batch.Decoded[i] = false;
            var check = ImageDecoder.Check(image);
            batch.Bad[i] = new QuarantineEntry(batch.Ids[i], batch.Shard.Input, check.Reason ?? QuarantineReasons.Corrupt, check.Detail ?? e.Message);
        }
        finally
        {
            Stats.Busy(Stopwatch.GetTimestamp() - start);
        }
    }

    protected override void Discard(ImageBatch item) => _pool.Return(item);

    protected override void DiscardOutput(ImageBatch item) => _pool.Return(item);
}
