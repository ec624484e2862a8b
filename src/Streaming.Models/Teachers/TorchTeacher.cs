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

    public (int[] Classes, float[] Probs) TopK(float[] batch, int n, int k)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        int length = n * Spec.InChannels * Spec.ImageSize * Spec.ImageSize;
        var x = MemoryFormat.Input(tensor(batch.AsSpan(0, length).ToArray(), [n, Spec.InChannels, Spec.ImageSize, Spec.ImageSize]).to(_device));
        var probs = nn.functional.softmax(_model.forward(x), 1);
        var (values, indexes) = probs.topk(k, dim: 1);
        return (indexes.to(int32).cpu().data<int>().ToArray(), values.cpu().data<float>().ToArray());
    }

    public void Dispose() => _model.Dispose();
}
