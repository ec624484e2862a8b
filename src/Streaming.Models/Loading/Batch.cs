using static TorchSharp.torch;

namespace Streaming.Models.Loading;

/// <summary>
/// One batch on the CPU: images (N x C x H x W floats), class labels (N int64) and, with soft targets, the target
/// distributions (N x classes floats). Disposing frees them.
/// </summary>
public sealed class Batch : IDisposable
{
    public Batch(Tensor images, Tensor labels, long epoch, long indexInEpoch, Tensor? targets = null)
    {
        Images = images;
        Labels = labels;
        Epoch = epoch;
        IndexInEpoch = indexInEpoch;
        Targets = targets;
    }

    public Tensor Images { get; }
    /// <summary>The images' ids, in the batch's order.</summary>
    public IReadOnlyList<string> Ids { get; init; } = [];
    public Tensor Labels { get; }
    /// <summary>Soft targets (rows sum to 1), or null: train on <see cref="Labels"/>.</summary>
    public Tensor? Targets { get; }
    public long Epoch { get; }
    /// <summary>Which batch of its epoch this is (0-based).</summary>
    public long IndexInEpoch { get; }
    public long Count => Labels.shape[0];

    public void Dispose()
    {
        Images.Dispose();
        Labels.Dispose();
        Targets?.Dispose();
    }
}
