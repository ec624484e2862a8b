using Streaming.Models.IO;
using TorchSharp;

namespace Streaming.Models.Teachers;

/// <summary>Opens a teacher of any supported kind: our model.safetensors (or run folder), a .pt state dict with a spec, or an .onnx model.</summary>
public static class Teachers
{
    /// <summary>The model file a teacher path names: an .onnx file as it is, a run folder's model.safetensors, or the file itself.</summary>
    public static string Resolve(string path) => path.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase) ? path : ModelFile.Resolve(path);

    public static ITeacher Open(string path, torch.Device device, ModelSpec? spec = null, int? threads = null)
    {
        string file = Resolve(path);
        if (file.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase)) return new OnnxTeacher(file, spec, threads);
        var (model, resolved) = ModelFile.Load(file, spec, device);
        return new TorchTeacher(model, resolved, device);
    }
}
