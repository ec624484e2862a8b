using Streaming.Models.IO;
using TorchSharp;

namespace Streaming.Models.Teachers;

/// <summary>Opens a teacher of any supported kind: our model.safetensors (or run folder), a .pt state dict with a spec, or an .onnx model.</summary>
public static class Teachers
{
    public static ITeacher Open(string path, torch.Device device, ModelSpec? spec = null, int? threads = null)
    {
        if (path.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase)) return new OnnxTeacher(path, spec, threads);
        var (model, resolved) = ModelFile.Load(ModelFile.Resolve(path), spec, device);
        return new TorchTeacher(model, resolved, device);
    }
}
