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
    /// <summary>Trains on <paramref name="b"/> (this process's share of a global batch) at rate <paramref name="lr"/>; returns the global batch's loss.</summary>
    public float Run(Batch b, double lr)
    {
        // libtorch keeps its thread count per native thread, and this step may have landed on a new one.
        Kernels.OnThisThread();
        using var scope = NewDisposeScope();
        var x = MemoryFormat.Input(b.Images.to(device));
        var logits = model.forward(x);
        var loss = b.Targets is { } t
            ? -(t.to(device) * nn.functional.log_softmax(logits, 1)).sum(1).mean()
            : nn.functional.cross_entropy(logits, b.Labels.to(device));
        sgd.ZeroGrad();
        loss.backward();
        float value = group.AverageGradients(model, loss.item<float>());
        sgd.Step(lr);
        return value;
    }
}
