using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Streaming.Models.Zoo;

/// <summary>
/// TorchSharp's BatchNorm2d, with one change: it counts batches with a scalar that is kept alive
/// (<see cref="KeptScalars"/>) rather than a temporary that a collection can free during the native call.
/// The parameters, buffers, their names and every value it computes are the same, so model files do not change.
/// </summary>
public sealed class StableBatchNorm2d : BatchNorm
{
    public StableBatchNorm2d(long features, double eps = 1e-5, double momentum = 0.1)
        : base(features, eps, momentum, affine: true, track_running_stats: true, device: null, dtype: null, name: "BatchNorm2d")
    {
    }

    protected override void ValidateInputDimensions(Tensor input)
    {
        if (input.ndim != 4) throw new ArgumentException($"expected 4D input, but got {input.ndim}D input.");
    }

    // As TorchSharp's BatchNorm.forward (and torch.nn.BatchNorm2d), but for the scalar passed to add_.
    public override Tensor forward(Tensor input)
    {
        ValidateInputDimensions(input);
        double factor = momentum ?? 0.0;
        if (training && track_running_stats && num_batches_tracked is not null)
        {
            num_batches_tracked.add_(KeptScalars.One, KeptScalars.One);
            factor = momentum ?? 1.0 / num_batches_tracked.item<long>();
        }
        bool batchStatistics = training || (running_mean is null && running_var is null);
        bool useRunning = !training || track_running_stats;
        return nn.functional.batch_norm(input, useRunning ? running_mean : null, useRunning ? running_var : null, weight, bias,
            batchStatistics, factor, eps);
    }
}
