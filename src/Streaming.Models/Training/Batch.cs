using static TorchSharp.torch;

namespace Streaming.Models.Training;

/// <summary>One batch on the CPU: images (N x C x H x W floats) and class targets (N int64). Disposing frees both.</summary>
public sealed class Batch : IDisposable
{
    public Batch(Tensor images, Tensor labels, long epoch, long indexInEpoch)
    {
        Images = images;
        Labels = labels;
        Epoch = epoch;
        IndexInEpoch = indexInEpoch;
    }

    public Tensor Images { get; }
    public Tensor Labels { get; }
    public long Epoch { get; }
    /// <summary>Which batch of its epoch this is (0-based).</summary>
    public long IndexInEpoch { get; }
    public long Count => Labels.shape[0];

    public void Dispose()
    {
        Images.Dispose();
        Labels.Dispose();
    }
}
