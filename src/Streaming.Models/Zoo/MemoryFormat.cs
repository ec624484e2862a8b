using static TorchSharp.torch;

namespace Streaming.Models.Zoo;

/// <summary>
/// Channels-last (NHWC) memory layout for convolutional models. libtorch chooses its convolution, batch-norm and
/// pooling kernels from the strides of the weights and the input; on this CPU the NHWC kernels (oneDNN) train
/// resnet20 about 1.3x faster than the default NCHW ones and infer about 1.3x faster (perf/RESULTS.md). Only the
/// layout changes: shapes, names and values are the same, and files are still written in the usual NCHW order
/// (<see cref="IO.SafeTensors"/> saves contiguous copies), so Python and torchvision read them as before.
/// Every verb sets it from <c>compute.channels_last</c> (<c>--channels-last</c>, on by default) through
/// <c>Kernels.Configure</c>; <c>STREAMING_CHANNELS_LAST=0</c> only changes the starting value, for programs that do not
/// configure it (the perf harness).
/// </summary>
public static class MemoryFormat
{
    public static bool ChannelsLast { get; set; } = Environment.GetEnvironmentVariable("STREAMING_CHANNELS_LAST") != "0";

    /// <summary>Gives every 4-d parameter (the convolution kernels) channels-last strides, in place. Call it after <c>to(device)</c>; calling it twice is harmless.</summary>
    public static void Apply(nn.Module model)
    {
        if (ChannelsLast) ToChannelsLast(model);
    }

    /// <summary>Gives every 4-d parameter channels-last strides, in place, whatever <see cref="ChannelsLast"/> says.</summary>
    public static void ToChannelsLast(nn.Module model)
    {
        using var _ = no_grad();
        foreach (var p in model.parameters())
            if (p.dim() == 4 && !IsChannelsLast(p))
                using (var nhwc = Convert(p))
                    p.set_(nhwc);
    }

    /// <summary>A 4-d batch in channels-last layout (same shape and values); anything else as it is.</summary>
    public static Tensor Input(Tensor x) => ChannelsLast ? ToChannelsLast(x) : x;

    /// <summary>A 4-d tensor in channels-last layout (same shape and values), whatever <see cref="ChannelsLast"/> says; anything else as it is.</summary>
    public static Tensor ToChannelsLast(Tensor x) => x.dim() == 4 && !IsChannelsLast(x) ? Convert(x) : x;

    private static Tensor Convert(Tensor t) => t.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);

    /// <summary>Whether the strides are NHWC's: channels vary fastest, then width, height, batch (dimensions of size 1 fit either way, as in libtorch).</summary>
    public static bool IsChannelsLast(Tensor t)
    {
        if (t.dim() != 4) return false;
        long[] shape = t.shape, stride = t.stride();
        long expected = 1;
        foreach (int d in (int[])[1, 3, 2, 0])
        {
            if (shape[d] == 1) continue;
            if (stride[d] != expected) return false;
            expected *= shape[d];
        }
        return true;
    }
}
