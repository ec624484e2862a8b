using TorchSharp;
using static TorchSharp.torch;

namespace Streaming.Models.Training;

/// <summary>
/// SGD with momentum and weight decay, exactly as torch.optim.SGD computes it (dampening 0, not
/// Nesterov): g = grad + wd * p; buf = momentum * buf + g (buf = g on the first step); p -= lr * buf.
/// Written here so that its whole state (the momentum buffers) is plain named tensors that a
/// checkpoint saves and restores bit for bit.
/// </summary>
public sealed class Sgd : IDisposable
{
    private readonly List<(string Name, Tensor Param)> _params;
    private readonly Dictionary<string, Tensor> _buffers = new(StringComparer.Ordinal);

    public Sgd(nn.Module module, double momentum = 0.9, double weightDecay = 1e-4)
    {
        _params = module.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, (Tensor)p.parameter)).ToList();
        Momentum = momentum;
        WeightDecay = weightDecay;
    }

    public double Momentum { get; }
    public double WeightDecay { get; }

    public void ZeroGrad()
    {
        foreach (var (_, p) in _params)
        {
            var g = p.grad;
            if (g is not null && !g.IsInvalid) g.zero_();
        }
    }

    public void Step(double lr)
    {
        using var _ = no_grad();
        // Scalars held until the loop ends (KeptScalars says why no temporary ones).
        using var step = (-lr).ToScalar();
        using var decay = WeightDecay.ToScalar();
        using var momentum = Momentum.ToScalar();
        foreach (var (name, p) in _params)
        {
            var grad = p.grad;
            if (grad is null || grad.IsInvalid) continue;
            using var d = WeightDecay != 0 ? grad.add(p, decay) : grad.clone();
            if (Momentum != 0)
            {
                if (_buffers.TryGetValue(name, out var buf))
                {
                    buf.mul_(momentum).add_(d, KeptScalars.One);
                }
                else
                {
                    // Lives across steps: must not belong to the caller's per-step dispose scope.
                    buf = d.detach().clone().DetachFromDisposeScope();
                    _buffers[name] = buf;
                }
                p.add_(buf, step);
            }
            else
            {
                p.add_(d, step);
            }
        }
    }

    /// <summary>The momentum buffers by parameter name, for checkpoints.</summary>
    public IReadOnlyDictionary<string, Tensor> State => _buffers;

    public void LoadState(IReadOnlyDictionary<string, Tensor> state)
    {
        foreach (var b in _buffers.Values) b.Dispose();
        _buffers.Clear();
        var known = _params.ToDictionary(p => p.Name, p => p.Param);
        foreach (var (name, t) in state)
        {
            if (!known.TryGetValue(name, out var p)) throw new Streaming.Core.StreamingException($"checkpoint has optimizer state for unknown parameter '{name}'");
            _buffers[name] = t.to(p.device).clone().DetachFromDisposeScope();
        }
    }

    public void Dispose()
    {
        foreach (var b in _buffers.Values) b.Dispose();
        _buffers.Clear();
    }
}
