using Streaming.Models;
using Streaming.Models.IO;
using Streaming.Models.Teachers;

namespace Streaming.Engine.Scoring;

/// <summary>Opens a session's teacher (tests and a cluster's test silos give a deterministic stand-in).</summary>
public interface ITeacherSource
{
    /// <param name="spec">For a teacher that does not carry its own spec (a .pt state dict, an ONNX model without metadata).</param>
    ITeacher Open(string path, string device, int threads, ModelSpec? spec = null);
}

/// <summary>The real teachers: a safetensors, .pt or ONNX file (or a run folder).</summary>
public sealed class FileTeacherSource : ITeacherSource
{
    public static FileTeacherSource Instance { get; } = new();

    public ITeacher Open(string path, string device, int threads, ModelSpec? spec = null) =>
        Teachers.Open(Teachers.Resolve(path), TorchDevice.Resolve(device), spec, threads);
}

/// <summary>A teacher the caller opened and keeps: the session uses it and does not dispose it.</summary>
public sealed class LentTeacherSource(ITeacher teacher) : ITeacherSource
{
    public ITeacher Open(string path, string device, int threads, ModelSpec? spec = null) => new Lent(teacher);

    private sealed class Lent(ITeacher inner) : ITeacher
    {
        public ModelSpec Spec => inner.Spec;

        public void TopK(float[] pixels, int n, int k, Span<int> classes, Span<float> probs) => inner.TopK(pixels, n, k, classes, probs);

        public void Dispose()
        {
        }
    }
}
