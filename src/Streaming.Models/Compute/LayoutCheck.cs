using System.Security.Cryptography;
using System.Runtime.InteropServices;
using Streaming.Models.Zoo;
using TorchSharp;
using static TorchSharp.torch;

namespace Streaming.Models.Compute;

/// <summary>
/// How far one architecture's float32 forward and backward passes, in either memory layout, are from a float64
/// reference on this machine's kernels: the check that found libtorch's wrong 1x1 kernels (docs/cpu-kernels.md).
/// </summary>
/// <param name="LogitsSha256">SHA-256 of the channels-last float32 logits: equal across runs that use the same kernels.</param>
public sealed record LayoutCheck(string Arch, int ImageSize, int Batch, double LogitsNchw, double LogitsChannelsLast,
    double GradientsNchw, double GradientsChannelsLast, string LogitsSha256)
{
    /// <summary>
    /// The largest error allowed, relative to the largest reference value (logits, or gradients over all parameters and
    /// the input). float32 rounds each product and sum to 6e-8 relative; a dot product of K terms summed in any order is
    /// off by about sqrt(K) of that (K is at most 4,608 here: 512 channels x 3 x 3), some 4e-6, and about 20 layers in
    /// sequence compound it to some 1e-4 at worst. 1e-3 leaves a factor of 10 over that; the wrong kernels this check
    /// exists for were off by 1e-1 (resnet18) to 1e0.
    /// </summary>
    public const double Tolerance = 1e-3;

    public bool Passed => Math.Max(Math.Max(LogitsNchw, LogitsChannelsLast), Math.Max(GradientsNchw, GradientsChannelsLast)) <= Tolerance;

    /// <summary>The size a check uses by default: the model's own for small models, 64 px for the ImageNet ones (their kernels, at a size that checks in seconds).</summary>
    public static int DefaultSize(string arch) => ModelZoo.NativeInputSize(arch) is null ? 32 : 64;

    /// <summary>
    /// Builds the model (seed 7, 10 classes, 3 channels) three times: float64 NCHW (the reference), float32 NCHW and
    /// float32 channels-last. Each computes logits for a seeded batch in eval mode and the gradients of a seeded weighting
    /// of them with respect to the input and every parameter. Eval mode keeps batch norm linear, so the gradients are
    /// well conditioned; what remains is ReLU: an activation within rounding of zero can land on the other side in
    /// float32, and that one gate then passes (or stops) a whole gradient value. Such a flip strikes at random (about
    /// one input in three for resnet20 at 32 px, batch 4), a wrong kernel on every input; so the gradient error is the
    /// smallest over <see cref="Inputs"/> seeded inputs, and the logits error (which a flip moves by rounding only) the largest.
    /// </summary>
    public static LayoutCheck Run(string arch, int? imageSize = null, int batch = 2)
    {
        int size = imageSize ?? DefaultSize(arch);
        using var scope = NewDisposeScope();
        using var reference = ModelZoo.Create(arch, 10, 3, 7);
        using var nchw = ModelZoo.Create(arch, 10, 3, 7);
        using var nhwc = ModelZoo.Create(arch, 10, 3, 7);
        // Copies, so that the three hold the same weights whatever else draws from libtorch's generator meanwhile.
        nchw.load_state_dict(reference.state_dict());
        nhwc.load_state_dict(reference.state_dict());
        reference.to(float64);
        MemoryFormat.ToChannelsLast(nhwc);
        foreach (var m in new[] { reference, nchw, nhwc }) m.eval();

        double logitsA = 0, logitsB = 0, gradsA = double.MaxValue, gradsB = double.MaxValue;
        string sha = "";
        for (int i = 0; i < Inputs; i++)
        {
            using var inner = NewDisposeScope();
            var x = randn(batch, 3, size, size, generator: new Generator(seed: (ulong)(11 + 2 * i)));
            var weighting = randn(batch, 10, generator: new Generator(seed: (ulong)(12 + 2 * i)));
            var (refLogits, refGrads) = Pass(reference, x.to(float64), weighting.to(float64));
            var (aLogits, aGrads) = Pass(nchw, x, weighting);
            var (bLogits, bGrads) = Pass(nhwc, MemoryFormat.ToChannelsLast(x), weighting);
            logitsA = Math.Max(logitsA, Relative(aLogits, refLogits));
            logitsB = Math.Max(logitsB, Relative(bLogits, refLogits));
            gradsA = Math.Min(gradsA, Relative(aGrads, refGrads));
            gradsB = Math.Min(gradsB, Relative(bGrads, refGrads));
            if (i == 0)
            {
                var logits = bLogits.contiguous().data<float>().ToArray();
                sha = Convert.ToHexStringLower(SHA256.HashData(MemoryMarshal.AsBytes(logits.AsSpan())));
            }
        }
        return new LayoutCheck(arch, size, batch, logitsA, logitsB, gradsA, gradsB, sha);
    }

    /// <summary>How many seeded inputs a check runs.</summary>
    public const int Inputs = 3;

    private static (Tensor Logits, List<Tensor> Grads) Pass(nn.Module<Tensor, Tensor> model, Tensor x, Tensor weighting)
    {
        model.zero_grad();
        var input = x.detach().requires_grad_();
        var logits = model.forward(input);
        logits.mul(weighting).sum().backward();
        var grads = new List<Tensor> { input.grad!.detach().clone() };
        foreach (var p in model.parameters()) grads.Add(p.grad!.detach().clone());
        return (logits.detach(), grads);
    }

    private static double Relative(Tensor a, Tensor reference) =>
        a.to(float64).sub(reference).abs().max().item<double>() / Math.Max(reference.abs().max().item<double>(), 1e-30);

    /// <summary>
    /// The worst error over the tensors, each relative to its own largest reference value, floored at 1% of the largest
    /// over all of them (so that a tensor of near-zero gradients does not turn rounding into a failure).
    /// </summary>
    private static double Relative(List<Tensor> a, List<Tensor> reference)
    {
        var scales = reference.Select(r => r.abs().max().item<double>()).ToList();
        double floor = Math.Max(scales.Max() * 1e-2, 1e-30), worst = 0;
        for (int i = 0; i < a.Count; i++)
            worst = Math.Max(worst, a[i].to(float64).sub(reference[i]).abs().max().item<double>() / Math.Max(scales[i], floor));
        return worst;
    }
}
