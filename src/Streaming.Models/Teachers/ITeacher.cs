using Streaming.Models.IO;

namespace Streaming.Models.Teachers;

/// <summary>
/// A model that scores images for selection: given a batch of preprocessed images it returns each image's top-k
/// classes and softmax probabilities, computed where the model runs, so only k pairs an image come back.
/// </summary>
public interface ITeacher : IDisposable
{
    ModelSpec Spec { get; }

    /// <summary>
    /// Scores the first <paramref name="n"/> images of <paramref name="pixels"/> (N x C x H x W floats, row-major) and writes
    /// each image's <paramref name="k"/> classes and probabilities, highest first, into the first n x k entries of
    /// <paramref name="classes"/> and <paramref name="probs"/>.
    /// </summary>
    void TopK(float[] pixels, int n, int k, Span<int> classes, Span<float> probs);
}
