using TorchSharp;

namespace Streaming.Models;

/// <summary>
/// Chooses the libtorch device from configuration: <c>cpu</c>, <c>cuda</c>, <c>cuda:N</c> or <c>auto</c>
/// (CUDA when the backend built in has a GPU, else CPU). Code never names a device itself.
/// </summary>
public static class TorchDevice
{
    public static torch.Device Resolve(string spec = "auto")
    {
        spec = spec.Trim().ToLowerInvariant();
        if (spec == "auto") return torch.cuda.is_available() ? torch.CUDA : torch.CPU;
        if (spec.StartsWith("cuda", StringComparison.Ordinal) && !torch.cuda.is_available())
            throw new Streaming.Core.StreamingException($"--device {spec}: CUDA is not available (this build uses the '{Backend}' libtorch backend, or no GPU is visible)");
        try
        {
            return new torch.Device(spec);
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            throw new Streaming.Core.StreamingException($"--device {spec}: not a device (use auto, cpu, cuda or cuda:N)", e);
        }
    }

    /// <summary>The libtorch backend this build references (the TorchBackend MSBuild property).</summary>
    public static string Backend => typeof(TorchDevice).Assembly
        .GetCustomAttributes(typeof(System.Reflection.AssemblyMetadataAttribute), false)
        .OfType<System.Reflection.AssemblyMetadataAttribute>()
        .FirstOrDefault(a => a.Key == "TorchBackend")?.Value ?? "unknown";

    /// <summary>One line about the runtime, for logs and run records.</summary>
    public static string Describe() =>
        $"libtorch {torch.__version__} ({Backend} backend), cuda available: {torch.cuda.is_available()}, intra-op threads: {torch.get_num_threads()}";
}
