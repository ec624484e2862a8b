using Streaming.Models;
using TorchSharp;
using Xunit;

namespace Streaming.Tests;

[Collection(nameof(ProcessState))]
public class TorchSharpTests
{
    [Fact]
    public void Torch_LoadsAndComputes_OnThisMachine()
    {
        // Fails with a DllNotFoundException/TypeInitializationException when libLibTorchSharp.so cannot load
        // (for example when the build did not mark GLIBCXX_3.4.32 weak on an older libstdc++).
        using var a = torch.arange(6, dtype: torch.float32).reshape(2, 3);
        using var b = a.matmul(a.t());
        Assert.Equal(new float[] { 5, 14, 14, 50 }, b.data<float>().ToArray());
    }

    [Theory]
    [InlineData("cpu")]
    [InlineData("auto")]
    [InlineData("CPU")]
    public void Resolve_GivesAUsableDevice(string spec)
    {
        var device = TorchDevice.Resolve(spec);
        using var t = torch.ones(3, device: device);
        Assert.Equal(3f, t.sum().item<float>());
    }

    [Fact]
    public void Resolve_RejectsNonsense()
    {
        Assert.Throws<Streaming.Core.StreamingException>(() => TorchDevice.Resolve("toaster"));
    }

    [Fact]
    public void Describe_NamesTheBackend()
    {
        Assert.Contains("backend", TorchDevice.Describe());
        Assert.NotEqual("unknown", TorchDevice.Backend);
    }
}
