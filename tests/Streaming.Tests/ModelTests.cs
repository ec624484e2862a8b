using Streaming.Models.Zoo;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Streaming.Tests;

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

    [Theory]
    [InlineData("resnet20", 28, 1)]
    [InlineData("resnet18", 64, 3)]
    public void ChannelsLast_ChangesTheLayoutOnly_AndFilesStayNchw(string name, int size, int channels)
    {
        using var scope = NewDisposeScope();
        using var plain = ModelZoo.Create(name, 10, channels, 7);
        using var nhwc = ModelZoo.Create(name, 10, channels, 7);
        // The same weights by copy, not by seed: a parallel test drawing from libtorch's global generator during
        // creation once gave the second model other weights (logits 3 apart in CI).
        nhwc.load_state_dict(plain.state_dict());
        bool before = MemoryFormat.ChannelsLast;
        MemoryFormat.ChannelsLast = true;
        try
        {
            MemoryFormat.Apply(nhwc);
            var convs = nhwc.parameters().Where(p => p.dim() == 4).ToList();
            Assert.NotEmpty(convs);
            Assert.All(convs, p => Assert.True(MemoryFormat.IsChannelsLast(p)));
            plain.eval();
            nhwc.eval();
            using var _ = no_grad();
            // A fixed input, and a tolerance that grows with the logits (1e-4 absolute plus 1e-4 relative): the layouts sum floats in another order;
            // with a fresh random input each run and an absolute 1e-4 alone, resnet20 once failed in CI.
            var x = randn(4, channels, size, size, generator: new Generator(seed: 11));
            var a = plain.forward(x);
            var input = MemoryFormat.Input(x);
            Assert.True(MemoryFormat.IsChannelsLast(input));
            var b = nhwc.forward(input);
            Assert.True(a.allclose(b, rtol: 1e-4, atol: 1e-4), $"same values in either layout (largest difference {a.sub(b).abs().max().item<float>()})");
            // Saved files hold NCHW bytes: the channels-last model's file equals the plain model's.
            using var tmp = new TempDir();
            Streaming.Models.IO.SafeTensors.Save(tmp.Sub("a.safetensors"), plain.state_dict(), new Dictionary<string, string>());
            Streaming.Models.IO.SafeTensors.Save(tmp.Sub("b.safetensors"), nhwc.state_dict(), new Dictionary<string, string>());
            Assert.Equal(File.ReadAllBytes(tmp.Sub("a.safetensors")), File.ReadAllBytes(tmp.Sub("b.safetensors")));
        }
        finally
        {
            MemoryFormat.ChannelsLast = before;
        }
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
