using Streaming.Models.Compute;
using Streaming.Models.Zoo;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Streaming.Tests;

[Collection(nameof(ProcessState))]
public class ModelTests
{
    private static long Parameters(nn.Module m) => m.parameters().Sum(p => p.numel());

    [Theory]
    [InlineData("resnet18", 11_689_512)]
    [InlineData("resnet50", 25_557_032)]
    [InlineData("resnext50_32x4d", 25_028_904)]
    [InlineData("resnext101_32x8d", 88_791_336)]
    public void TorchvisionModels_HaveTorchvisionsParameterCount(string name, long expected)
    {
        using var model = ModelZoo.Create(name, 1000, 3);
        Assert.Equal(expected, Parameters(model));
    }

    [Theory]
    [InlineData("resnet18", 224, 1000, 3)]
    [InlineData("resnet34", 64, 10, 1)]
    [InlineData("resnext101_32x4d", 64, 7, 3)]
    [InlineData("resnet20", 28, 10, 1)]
    [InlineData("resnet32:w2", 32, 100, 3)]
    [InlineData("resnet56", 28, 10, 1)]
    [InlineData("cnn-small", 28, 10, 1)]
    [InlineData("cnn-small:w2", 64, 5, 3)]
    public void Models_GiveOneLogitPerClass(string name, int size, int classes, int channels)
    {
        using var scope = NewDisposeScope();
        using var model = ModelZoo.Create(name, classes, channels);
        model.eval();
        using var _ = no_grad();
        var y = model.forward(randn(2, channels, size, size));
        Assert.Equal(new long[] { 2, classes }, y.shape);
    }

    /// <summary>
    /// Both layouts against a float64 reference, forward and backward (<see cref="LayoutCheck"/> says why its tolerance
    /// holds for float32 on any kernels). resnet18 and resnet50 are here because libtorch's own 1x1 convolutions got them
    /// wrong on AVX-512 (off by 0.14 on logits of 1.3) and killed the process (SIGFPE) in resnet50's backward pass.
    /// </summary>
    [Theory]
    [InlineData("resnet20", 28)]
    [InlineData("resnet18", 64)]
    [InlineData("resnet50", 64)]
    [InlineData("cnn-small", 28)]
    public void BothLayouts_MatchAFloat64Reference_ForwardAndBackward(string name, int size)
    {
        var check = LayoutCheck.Run(name, size);
        Assert.True(check.Passed, $"{name}: logits {check.LogitsNchw:E1} / {check.LogitsChannelsLast:E1}, gradients {check.GradientsNchw:E1} / {check.GradientsChannelsLast:E1} (NCHW / channels-last), tolerance {LayoutCheck.Tolerance:E0}");
    }

    [Theory]
    [InlineData("resnet20", 1)]
    [InlineData("resnet18", 3)]
    public void ChannelsLast_ChangesTheLayoutOnly_AndFilesStayNchw(string name, int channels)
    {
        using var scope = NewDisposeScope();
        using var plain = ModelZoo.Create(name, 10, channels, 7);
        using var nhwc = ModelZoo.Create(name, 10, channels, 7);
        nhwc.load_state_dict(plain.state_dict());
        MemoryFormat.ToChannelsLast(nhwc);
        var convs = nhwc.parameters().Where(p => p.dim() == 4).ToList();
        Assert.NotEmpty(convs);
        Assert.All(convs, p => Assert.True(MemoryFormat.IsChannelsLast(p)));
        Assert.Contains(plain.parameters(), p => p.dim() == 4 && p.shape[2] > 1 && !MemoryFormat.IsChannelsLast(p));
        // Saved files hold NCHW bytes: the channels-last model's file equals the plain model's.
        using var tmp = new TempDir();
        Streaming.Models.IO.SafeTensors.Save(tmp.Sub("a.safetensors"), plain.state_dict(), new Dictionary<string, string>());
        Streaming.Models.IO.SafeTensors.Save(tmp.Sub("b.safetensors"), nhwc.state_dict(), new Dictionary<string, string>());
        Assert.Equal(File.ReadAllBytes(tmp.Sub("a.safetensors")), File.ReadAllBytes(tmp.Sub("b.safetensors")));
    }

    [Theory]
    [InlineData(1, false)]
    [InlineData(2, false)]
    [InlineData(1, true)]
    [InlineData(2, true)]
    public void PointwiseConv2d_IsA1x1Convolution_KeepingTheInputsLayout(int stride, bool channelsLast)
    {
        using var scope = NewDisposeScope();
        using var conv = new PointwiseConv2d(24, 40, stride);
        Assert.Equal(["weight"], conv.state_dict().Keys);
        Assert.Equal(new long[] { 40, 24, 1, 1 }, conv.weight.shape);
        using (no_grad()) conv.weight.copy_(randn(40, 24, 1, 1, generator: new Generator(seed: 1)));
        var x = randn(3, 24, 9, 9, generator: new Generator(seed: 2));
        var input = channelsLast ? MemoryFormat.ToChannelsLast(x) : x;
        var y = conv.forward(input);
        var expected = nn.functional.conv2d(x.to(float64), conv.weight.detach().to(float64), strides: [stride, stride]);
        Assert.Equal(expected.shape, y.shape);
        Assert.True(y.to(float64).allclose(expected, rtol: 1e-5, atol: 1e-5), $"largest difference {y.to(float64).sub(expected).abs().max().item<double>()}");
        Assert.Equal(channelsLast, MemoryFormat.IsChannelsLast(y) && !y.is_contiguous());
    }

    [Fact]
    public void CifarResNets_HaveTheRightDepthAndWidth()
    {
        // 6n+2 layers: 3 stages of n blocks, 2 convs each, plus the stem and fc; the width multiplies channels.
        using var r20 = ModelZoo.Create("resnet20", 10, 3);
        using var r56 = ModelZoo.Create("resnet56", 10, 3);
        using var r20w2 = ModelZoo.Create("resnet20:w2", 10, 3);
        int Convs(nn.Module m) => m.named_modules().Count(x => x.module is TorchSharp.Modules.Conv2d && !x.name.Contains("downsample"));
        Assert.Equal(19, Convs(r20));
        Assert.Equal(55, Convs(r56));
        // He et al. report 0.27M parameters for ResNet-20 (option A); the two 1x1 projection shortcuts add 2,048 + 128 (BN) + 8,192 + 256 (BN).
        Assert.InRange(Parameters(r20), 270_000, 285_000);
        Assert.InRange(Parameters(r20w2), 3.9 * Parameters(r20), 4.1 * Parameters(r20));
    }

    [Fact]
    public void TorchvisionNames_AreUsed()
    {
        using var model = ModelZoo.Create("resnet50", 1000, 3);
        var names = model.state_dict().Keys.ToHashSet();
        foreach (var key in new[] { "conv1.weight", "bn1.running_mean", "bn1.num_batches_tracked", "layer1.0.conv3.weight", "layer1.0.downsample.0.weight",
                     "layer1.0.downsample.1.running_var", "layer4.2.bn3.bias", "fc.weight", "fc.bias" })
            Assert.Contains(key, names);
        Assert.Equal(320, names.Count); // torchvision's resnet50 state_dict has 320 entries
    }

    [Theory]
    [InlineData("resnet21")]
    [InlineData("resnet18:w2")]
    [InlineData("resnet20:x2")]
    [InlineData("vgg16")]
    public void Zoo_RejectsUnknownNames(string name)
    {
        Assert.Throws<ArgumentException>(() => ModelZoo.Create(name, 10, 3));
    }
}
