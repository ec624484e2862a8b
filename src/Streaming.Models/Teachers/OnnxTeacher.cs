using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Streaming.Core;
using Streaming.Models.IO;

namespace Streaming.Models.Teachers;

/// <summary>
/// A teacher trained anywhere and exported to ONNX, run by ONNX Runtime (CPU execution provider here).
/// Its preprocessing comes from the model's "streaming.spec" metadata (image_size, in_channels, mean,
/// std, classes) or from the caller. The model outputs logits (N x C); softmax and top-k are computed on
/// the CPU, where this session runs.
/// </summary>
public sealed class OnnxTeacher : ITeacher
{
    private readonly InferenceSession _session;
    private readonly string _input;

    /// <summary>The largest ONNX file opened: a protobuf message cannot be larger, so anything bigger is not a model.</summary>
    public const long MaxBytes = int.MaxValue;

    public OnnxTeacher(string path, ModelSpec? spec = null, int? threads = null)
    {
        if (!File.Exists(path)) throw new StreamingException($"{path}: ONNX model not found");
        long size = new FileInfo(path).Length;
        if (size > MaxBytes) throw new StreamingException($"{path}: {size:N0} bytes, over the limit of {MaxBytes:N0} for an ONNX model (protobuf's own; larger models keep their weights in external data files)");
        var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        if (threads is int t) options.IntraOpNumThreads = t;
        try
        {
            _session = new InferenceSession(path, options);
        }
        catch (OnnxRuntimeException e)
        {
            throw new StreamingException($"{path}: not a loadable ONNX model ({e.Message})", e);
        }
        _input = _session.InputMetadata.Keys.First();
        var outputDims = _session.OutputMetadata.Values.First().Dimensions;
        int classes = outputDims.Length == 2 && outputDims[1] > 0 ? outputDims[1] : throw new StreamingException($"{path}: the first output must be N x classes logits");
        Spec = spec ?? ReadSpec(path, _session.ModelMetadata.CustomMetadataMap, classes);
        if (Spec.NumClasses != classes) throw new StreamingException($"{path}: the model outputs {classes} classes, the spec says {Spec.NumClasses}");
    }

    public ModelSpec Spec { get; }

    private static ModelSpec ReadSpec(string path, IReadOnlyDictionary<string, string> metadata, int classes)
    {
        if (!metadata.TryGetValue("streaming.spec", out var json))
            throw new StreamingException($"{path}: no 'streaming.spec' metadata; pass --image-size, --in-channels, --mean and --std");
        using var doc = JsonDocument.Parse(json);
        var e = doc.RootElement;
        float[] Floats(string name) => e.GetProperty(name).EnumerateArray().Select(v => v.GetSingle()).ToArray();
        var names = e.TryGetProperty("classes", out var c) ? c.EnumerateArray().Select(v => v.GetString() ?? "").ToArray() : [];
        return new ModelSpec("onnx", classes, e.GetProperty("in_channels").GetInt32(), e.GetProperty("image_size").GetInt32(), Floats("mean"), Floats("std"), names);
    }

    public void TopK(float[] pixels, int n, int k, Span<int> classes, Span<float> probs)
    {
        var shape = new[] { n, Spec.InChannels, Spec.ImageSize, Spec.ImageSize };
        var input = new DenseTensor<float>(pixels.AsMemory(0, n * Spec.InChannels * Spec.ImageSize * Spec.ImageSize), shape);
        using var results = _session.Run([NamedOnnxValue.CreateFromTensor(_input, input)]);
        var logits = results.First().AsTensor<float>();
        int c = Spec.NumClasses;
        var row = new float[c];
        var order = new int[c];
        for (int i = 0; i < n; i++)
        {
            // Softmax in double for accuracy, then the k largest (ties to the smaller class index, as torch.topk on CPU).
            double max = double.NegativeInfinity;
            for (int j = 0; j < c; j++) max = Math.Max(max, logits[i, j]);
            double sum = 0;
            for (int j = 0; j < c; j++) sum += Math.Exp(logits[i, j] - max);
            for (int j = 0; j < c; j++) { row[j] = (float)(Math.Exp(logits[i, j] - max) / sum); order[j] = j; }
            Array.Sort(order, (a, b) => row[b] != row[a] ? row[b].CompareTo(row[a]) : a.CompareTo(b));
            for (int j = 0; j < k; j++)
            {
                classes[i * k + j] = order[j];
                probs[i * k + j] = row[order[j]];
            }
        }
    }

    public void Dispose() => _session.Dispose();
}
