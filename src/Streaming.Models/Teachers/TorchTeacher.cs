using Streaming.Models.IO;
using Streaming.Models.Zoo;
using TorchSharp;
using static TorchSharp.torch;

namespace Streaming.Models.Teachers;

/// <summary>A TorchSharp model (trained here, or a torchvision state dict) as a teacher; softmax and top-k run on its device.</summary>
public sealed class TorchTeacher : ITeacher
{
    private readonly nn.Module<Tensor, Tensor> _model;
    private readonly Device _device;

    public TorchTeacher(nn.Module<Tensor, Tensor> model, ModelSpec spec, Device device)
    {
        _model = model;
        _device = device;
        Spec = spec;
        _model.to(device);
        MemoryFormat.Apply(_model);
        _model.eval();
    }

    public ModelSpec Spec { get; }

    public void TopK(float[] pixels, int n, int k, Span<int> classes, Span<float> probs)
    {
        Compute.Kernels.OnThisThread();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        int length = n * Spec.InChannels * Spec.ImageSize * Spec.ImageSize;
        // The caller's buffer itself (pinned until the scope disposes the tensor), not a copy: tensor(Memory<float>)
        // copies the whole batch, some 12 KB an image for 32x32 RGB, every batch.
        var x = frombuffer(pixels, ScalarType.Float32, count: length).view(n, Spec.InChannels, Spec.ImageSize, Spec.ImageSize);
        var probabilities = nn.functional.softmax(_model.forward(MemoryFormat.Input(x.to(_device))), 1);
        var (values, indexes) = probabilities.topk(k, dim: 1);
        indexes.to(int32).cpu().data<int>().CopyTo(classes[..(n * k)], 0, 0);
        values.cpu().data<float>().CopyTo(probs[..(n * k)], 0, 0);
    }

    public void Dispose() => _model.Dispose();
}
