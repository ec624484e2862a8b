using Streaming.Core.Shards;
using Streaming.Models.IO;
using Streaming.Models.Zoo;
using static TorchSharp.torch;

namespace Streaming.Models.Evaluation;

/// <summary>
/// A model's penultimate features for every image of a dataset, labeled or not, in the dataset's order: the
/// embeddings of dedup and of transfer (<c>streaming features</c>). No augmentation; the model's own preprocessing.
/// </summary>
public static class FeatureExtractor
{
    /// <summary>The features of <paramref name="dataset"/>; <paramref name="progress"/> gets the images done so far.</summary>
    public static async Task<FeatureSet> ExtractAsync(nn.Module<Tensor, Tensor> model, ModelSpec spec, string dataset, Device device,
        int batchSize = 256, int decodeWorkers = 1, IProgress<(long Done, long Total)>? progress = null, CancellationToken cancellationToken = default)
    {
        if (model is not IFeatureModel features)
            throw new Streaming.Core.StreamingException($"{spec.Arch}: has no penultimate layer to read features from (an ONNX model?); use a model of the zoo");
        var loader = InferencePass.InOrder(spec, dataset, batchSize, decodeWorkers, includeUnlabeled: true);
        long total = loader.EpochSize;
        var ids = new List<string>((int)Math.Min(total, int.MaxValue));
        var labels = new List<int>((int)Math.Min(total, int.MaxValue));
        float[]? values = null;
        int dim = 0;
        await InferencePass.RunAsync(model, loader, device, (batch, x) =>
        {
            var f = features.Features(x).to(float32).cpu().contiguous();
            if (values is null)
            {
                dim = checked((int)f.shape[1]);
                values = new float[checked(total * dim)];
            }
            f.data<float>().CopyTo(values, checked(ids.Count * dim));
            ids.AddRange(batch.Ids);
            labels.AddRange(batch.Labels.data<long>().ToArray().Select(l => (int)l));
            progress?.Report((ids.Count, total));
        }, cancellationToken).ConfigureAwait(false);
        if (ids.Count != total) throw new Streaming.Core.StreamingException($"{dataset}: read {ids.Count:N0} images of {total:N0}");
        return new FeatureSet([.. ids], [.. labels], values ?? [], dim);
    }
}
