using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Streaming.Models.Zoo;

/// <summary>
/// A 1x1 convolution without bias (the projection shortcuts and the 1x1 layers of the bottleneck), computed as the
/// matrix product it is: <c>y[n, o, h, w] = sum_i W[o, i] x[n, i, h·s, w·s]</c>. The parameter is <c>weight</c>,
/// shaped <c>[out, in, 1, 1]</c> exactly as a <c>Conv2d</c>'s, so state dicts and torchvision's names do not change.
/// </summary>
/// <remarks>
/// Not a <c>Conv2d</c> because libtorch 2.10's oneDNN (3.7.1) gets 1x1 convolutions wrong on our AVX-512 machines
/// (docs/cpu-kernels.md): the channels-last forward kernel (<c>brgconv_1x1:avx512_core</c>) returns wrong values in
/// the last block of output channels whenever it runs on two or more threads (resnet18's 256 -> 512 shortcut is off
/// by up to 2.4 on values of 4), and creating the backward kernel of a strided 1x1 convolution (resnet50's
/// 1024 -> 2048 shortcut) divides by zero and kills the process with SIGFPE, in either layout and under AVX2 as well.
/// A matrix product avoids those kernels in both directions. It keeps the input's layout: a channels-last input
/// multiplies its contiguous <c>[N, H, W, C]</c> view and gives a channels-last output; an NCHW input multiplies
/// <c>[N, C, H·W]</c> and gives NCHW. Both are checked against a float64 reference in the tests.
/// </remarks>
public sealed class PointwiseConv2d : nn.Module<Tensor, Tensor>
{
    private readonly long stride;

    // The field name is the parameter's name in the state dict.
#pragma warning disable IDE1006
    public readonly Parameter weight;
#pragma warning restore IDE1006

    public PointwiseConv2d(long inChannels, long outChannels, long stride = 1) : base("Conv2d")
    {
        if (inChannels < 1 || outChannels < 1) throw new ArgumentException($"channels must be positive, got {inChannels} -> {outChannels}");
        if (stride < 1) throw new ArgumentException($"stride must be at least 1, got {stride}");
        this.stride = stride;
        weight = new Parameter(empty(outChannels, inChannels, 1, 1));
        RegisterComponents();
    }

    public long InChannels => weight.shape[1];
    public long OutChannels => weight.shape[0];

    public override Tensor forward(Tensor x)
    {
        if (x.dim() != 4 || x.shape[1] != InChannels)
            throw new ArgumentException($"expected [N, {InChannels}, H, W], got [{string.Join(", ", x.shape)}]");
        // The layout is the input's; a strided view of it no longer has either layout's strides.
        bool channelsLast = MemoryFormat.IsChannelsLast(x) && !x.is_contiguous();
        if (stride != 1)
        {
            var every = TensorIndex.Slice(null, null, stride);
            x = x[TensorIndex.Colon, TensorIndex.Colon, every, every];
        }
        long n = x.shape[0], h = x.shape[2], w = x.shape[3];
        var w2 = weight.flatten(1); // [out, in]
        if (channelsLast)
            // [N, H, W, C] @ [C, O] -> [N, H, W, O], contiguous, which is [N, O, H, W] with channels-last strides.
            return x.permute(0, 2, 3, 1).matmul(w2.t()).permute(0, 3, 1, 2);
        // [O, C] @ [N, C, H*W] -> [N, O, H*W]
        return w2.matmul(x.reshape(n, InChannels, h * w)).view(n, OutChannels, h, w);
    }
}
