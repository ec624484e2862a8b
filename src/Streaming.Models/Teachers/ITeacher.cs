using Streaming.Models.IO;

namespace Streaming.Models.Teachers;

/// <summary>
/// A model that scores images for selection: given a batch of preprocessed images it returns each
/// image's top-k classes and softmax probabilities, computed where the model runs, so only k pairs an
/// image come back.
/// </summary>
public interface ITeacher : IDisposable
{
    ModelSpec Spec { get; }

    /// <summary>Scores <paramref name="n"/> images (N x C x H x W floats); returns row-major n x k classes and probabilities, highest first.</summary>
    (int[] Classes, float[] Probs) TopK(float[] batch, int n, int k);
}
