using static TorchSharp.torch;

namespace Streaming.Models.Compute;

/// <summary>
/// libtorch's own 1x1 convolution (which the zoo no longer uses, see <see cref="Zoo.PointwiseConv2d"/>) against a
/// float64 reference, forward only, for the channel counts of the zoo's 1x1 layers: the check that shows whether a
/// machine's libtorch has the wrong kernel of docs/cpu-kernels.md. Backward is not run: its bug kills the process.
/// </summary>
public sealed record LibtorchPointwiseCheck(int InChannels, int OutChannels, int Size, double Nchw, double ChannelsLast)
{
    /// <summary>
    /// The (in, out) channel counts of the zoo's 1x1 layers, and a few more around the edges of the bug; 1024 output
    /// channels last, because that is where the broken kernel divides by zero.
    /// </summary>
    public static readonly (int In, int Out)[] Shapes =
    [
        (16, 32), (32, 64), (64, 128), (64, 256), (128, 256), (256, 272), (256, 288), (256, 320), (256, 512), (512, 1000), (1024, 2048), (256, 1024), (512, 1024),
    ];

    public bool Passed => Math.Max(Nchw, ChannelsLast) <= LayoutCheck.Tolerance;

    /// <summary>One shape: a seeded batch of 4 at <paramref name="size"/> px, stride 1.</summary>
    public static LibtorchPointwiseCheck Run(int inChannels, int outChannels, int size = 4)
    {
        using var scope = NewDisposeScope();
        var x = randn(4, inChannels, size, size, generator: new Generator(seed: 3));
        var w = randn(outChannels, inChannels, 1, 1, generator: new Generator(seed: 4)).mul(1.0 / Math.Sqrt(inChannels));
        var reference = nn.functional.conv2d(x.to(float64), w.to(float64));
        double Error(Tensor y) => y.to(float64).sub(reference).abs().max().item<double>() / reference.abs().max().item<double>();
        double nchw = Error(nn.functional.conv2d(x, w));
        double nhwc = Error(nn.functional.conv2d(Zoo.MemoryFormat.ToChannelsLast(x), Zoo.MemoryFormat.ToChannelsLast(w)));
        return new LibtorchPointwiseCheck(inChannels, outChannels, size, nchw, nhwc);
    }
}
