using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Streaming.Models.Zoo;

/// <summary>
/// A zoo model split at its penultimate layer: <see cref="Features"/> maps images to the vector the classifier's last
/// linear layer (<see cref="Head"/>) reads, so that <c>forward(x) == Head.forward(Features(x))</c>. Used for
/// embeddings (dedup, <c>streaming features</c>) and for training the head alone (<c>--freeze-backbone</c>).
/// </summary>
public interface IFeatureModel
{
    /// <summary>The penultimate features, one row an image.</summary>
    Tensor Features(Tensor x);

    /// <summary>The last linear layer: features in, class logits out.</summary>
    Linear Head { get; }
}
