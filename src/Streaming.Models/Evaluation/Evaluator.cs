using Streaming.Models.IO;
using static TorchSharp.torch;

namespace Streaming.Models.Evaluation;

/// <summary>Evaluates a classifier on a labeled dataset: no augmentation, the dataset's order, every image.</summary>
public static class Evaluator
{
    /// <summary>
    /// Top-1, top-5, loss and per-class accuracy (with the confusion matrix) of <paramref name="model"/> on every labeled
    /// image of <paramref name="dataset"/>; the model's training mode is given back afterwards.
    /// </summary>
    public static async Task<EvalResult> EvaluateAsync(nn.Module<Tensor, Tensor> model, ModelSpec spec, string dataset, Device device,
        int batchSize = 256, int decodeWorkers = 1, string modelName = "", CancellationToken cancellationToken = default)
    {
        var loader = InferencePass.InOrder(spec, dataset, batchSize, decodeWorkers);
        var manifest = loader.Manifest;
        if (manifest.Classes.Count > spec.NumClasses)
            throw new Streaming.Core.StreamingException($"{dataset}: has {manifest.Classes.Count} classes, the model predicts {spec.NumClasses}");
        int c = spec.NumClasses;
        var confusion = new long[c][];
        for (int i = 0; i < c; i++) confusion[i] = new long[c];
        long images = 0, top1 = 0, top5 = 0;
        double lossSum = 0;
        await InferencePass.RunAsync(model, loader, device, (batch, x) =>
        {
            var y = batch.Labels.to(device);
            var logits = model.forward(x);
            lossSum += nn.functional.cross_entropy(logits, y, reduction: nn.Reduction.Sum).cpu().item<float>();
            int k = Math.Min(5, c);
            var topk = logits.topk(k, dim: 1).indexes.cpu().data<long>().ToArray();
            var labels = batch.Labels.data<long>().ToArray();
            for (int i = 0; i < labels.Length; i++)
            {
                long truth = labels[i];
                long predicted = topk[i * k];
                confusion[truth][predicted]++;
                if (predicted == truth) top1++;
                for (int j = 0; j < k; j++)
                    if (topk[i * k + j] == truth) { top5++; break; }
            }
            images += labels.Length;
        }, cancellationToken).ConfigureAwait(false);
        var perClass = Enumerable.Range(0, c).Select(i =>
        {
            long n = confusion[i].Sum();
            string name = i < manifest.Classes.Count ? manifest.Classes[i] : i < spec.Classes.Count ? spec.Classes[i] : i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return new ClassAccuracy(i, name, n, n == 0 ? 0 : (double)confusion[i][i] / n);
        }).Where(a => a.Images > 0 || a.Class < manifest.Classes.Count).ToList();
        return new EvalResult(modelName, Path.GetFullPath(dataset), images, (double)top1 / images, c >= 5 ? (double)top5 / images : null,
            lossSum / images, perClass, confusion);
    }
}
