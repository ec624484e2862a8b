using Streaming.Core.Loading;
using Streaming.Models.IO;
using Streaming.Models.Loading;
using Streaming.Models.Zoo;
using static TorchSharp.torch;

namespace Streaming.Models.Evaluation;

/// <summary>
/// One pass of a model over every image of a dataset, as evaluation and feature extraction make it: the dataset's
/// own order, no augmentation, evaluation mode, no gradients; the model's mode is given back afterwards.
/// </summary>
internal static class InferencePass
{
    /// <summary>Every image of a dataset in its own order, as the model sees it: no augmentation, no shuffle, the last batch kept (unlabeled ones too, with label -1, when asked).</summary>
    public static BatchLoader InOrder(ModelSpec spec, string dataset, int batchSize, int decodeWorkers, bool includeUnlabeled = false) => new(dataset, new LoaderOptions
    {
        Preprocess = spec.Preprocess(),
        Augment = AugmentationOptions.None,
        Shuffle = false,
        DropLast = false,
        IncludeUnlabeled = includeUnlabeled,
        BatchSize = batchSize,
        Workers = decodeWorkers,
    });

    /// <summary>
    /// Hands each batch of <paramref name="loader"/>'s first epoch to <paramref name="onBatch"/> with the model's input
    /// (on <paramref name="device"/>, in the model's memory format), under a dispose scope and no_grad: what it computes
    /// from them is freed when it returns.
    /// </summary>
    public static async Task RunAsync(nn.Module<Tensor, Tensor> model, BatchLoader loader, Device device, Action<Batch, Tensor> onBatch,
        CancellationToken cancellationToken)
    {
        bool training = model.training;
        MemoryFormat.Apply(model);
        model.eval();
        try
        {
            await foreach (var batch in loader.ReadEpochAsync(0, 0, cancellationToken).ConfigureAwait(false))
            {
                // libtorch keeps its thread count per native thread, and this batch may have landed on a new one.
                Compute.Kernels.OnThisThread();
                using (batch)
                using (NewDisposeScope())
                using (no_grad())
                {
                    onBatch(batch, MemoryFormat.Input(batch.Images.to(device)));
                }
            }
        }
        finally
        {
            model.train(training);
        }
    }
}
