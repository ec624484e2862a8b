using System.Diagnostics;
using System.IO.Compression;
using Streaming.Models.IO;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Streaming.Tests;

/// <summary>
/// torchvision's resnet18, saved by Debian's python3-torch (tests/fixtures/make_resnet18_fixture.py),
/// loads here and gives Python's logits; and what we save loads back into torchvision.
/// </summary>
[Collection(nameof(ProcessState))]
public class PythonInteropTests
{
    private static string Fixture(string name) => TestPaths.Fixture(name);

    private static Tensor ReadF32(string name, params long[] shape) => tensor(TestPaths.ReadF32(name), shape);

    private static (nn.Module<Tensor, Tensor> Model, ModelSpec Spec) LoadFixture(TempDir tmp)
    {
        string pt = tmp.Sub("resnet18.pt");
        using (var gz = new GZipStream(File.OpenRead(Fixture("resnet18-torchvision.pt.gz")), CompressionMode.Decompress))
        using (var file = File.Create(pt))
            gz.CopyTo(file);
        var spec = new ModelSpec("resnet18", 1000, 3, 64, [0.485f, 0.456f, 0.406f], [0.229f, 0.224f, 0.225f], []);
        return ModelFile.Load(pt, spec);
    }

    [Fact]
    public void TorchvisionStateDict_FromPython_GivesPythonsLogits()
    {
        using var tmp = new TempDir();
        var (model, _) = LoadFixture(tmp);
        using (model)
        using (var scope = NewDisposeScope())
        {
            model.eval();
            using var _ = no_grad();
            var x = ReadF32("resnet18-input.f32", 2, 3, 64, 64);
            var expected = ReadF32("resnet18-logits.f32", 2, 1000);
            var logits = model.forward(x);
            Assert.True(expected.std().item<float>() > 0.5f, "the fixture's logits are too small to tell anything apart");
            float diff = (logits - expected).abs().max().item<float>();
            Assert.True(diff < 1e-4f, $"max abs diff {diff}");
        }
    }

    [Fact]
    public void WeightsSavedHere_LoadInPython()
    {
        if (!PythonWithTorchvision()) Assert.Skip("needs /usr/bin/python3 with Debian's python3-torch and python3-torchvision");
        using var tmp = new TempDir();
        var (model, spec) = LoadFixture(tmp);
        using (model)
        {
            ModelFile.Save(tmp.Sub("model.safetensors"), model, spec);
            model.eval();
            using var _ = no_grad();
            using var logits = model.forward(ReadF32("resnet18-input.f32", 2, 3, 64, 64));
            File.WriteAllBytes(tmp.Sub("logits.f32"), logits.contiguous().bytes.ToArray());
        }
        var (code, output) = RunPython(Fixture("load_safetensors_in_python.py"), tmp.Sub("model.safetensors"), Fixture("resnet18-input.f32"), tmp.Sub("logits.f32"));
        Assert.True(code == 0, output);
        Assert.Contains("keys 122", output);
    }

    private static bool PythonWithTorchvision() =>
        File.Exists("/usr/bin/python3") && RunPython("-c", "import torch, torchvision").Code == 0;

    private static (int Code, string Output) RunPython(params string[] args)
    {
        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output);
    }
}
