using Streaming.Models.Compute;
using Streaming.Models.Loading;
using Streaming.Models.Zoo;
using static TorchSharp.torch;

namespace Streaming.Models.Training;

/// <summary>
/// One SGD step on a batch: forward, cross-entropy (against the labels, or against the soft targets when the batch
/// has them), backward, the group's gradient average, update.
/// </summary>
internal sealed class TrainStep(nn.Module<Tensor, Tensor> model, Sgd sgd, Device device, IProcessGroup group)
{
    /// <summary>Trains on this process's share of <paramref name="b"/> at rate <paramref name="lr"/>; returns the share's loss.</summary>
    public float Run(Batch b, double lr)
    {
        // libtorch keeps its thread count per native thread, and this step may have landed on a new one.
        Kernels.OnThisThread();
        using var scope = NewDisposeScope();
        var (images, labels, targets) = Share(b);
        var x = MemoryFormat.Input(images.to(device));
        var logits = model.forward(x);
        var loss = targets is { } t
            ? -(t.to(device) * nn.functional.log_softmax(logits, 1)).sum(1).mean()
            : nn.functional.cross_entropy(logits, labels.to(device));
        sgd.ZeroGrad();
        loss.backward();
        group.AverageGradients(model);
        sgd.Step(lr);
        return loss.item<float>();
    }

    /// <summary>The rows of <paramref name="b"/> this process trains on: in one process, the batch's own tensors.</summary>
    private (Tensor Images, Tensor Labels, Tensor? Targets) Share(Batch b)
    {
        var (start, count) = group.ShareOf(b.Count);
        if (start == 0 && count == b.Count) return (b.Images, b.Labels, b.Targets);
        return (b.Images.narrow(0, start, count), b.Labels.narrow(0, start, count), b.Targets?.narrow(0, start, count));
    }
}
