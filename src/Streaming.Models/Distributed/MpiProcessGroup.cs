using System.Buffers.Binary;
using System.Diagnostics;
using Streaming.Models.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Streaming.Models.Distributed;

/// <summary>
/// Data-parallel training over MPI: each rank trains on its contiguous share of every global batch (<see cref="ShareOf"/>),
/// the gradients are summed with MPI's allreduce in a few large buckets after backward and divided by the world size,
/// and every rank starts from rank 0's weights, buffers and momentum (<see cref="BroadcastState"/>). BatchNorm statistics
/// stay per rank, as in the paper's recipe (Goyal et al. 2017): each rank normalizes over its own B/N images.
/// </summary>
/// <remarks>
/// The allreduce follows backward rather than overlapping it: TorchSharp 0.107 exposes no hook on a parameter's
/// gradient (only module forward hooks), so nothing runs while backward is still producing gradients.
/// </remarks>
public sealed class MpiProcessGroup : IProcessGroup
{
    /// <summary>Gradient bytes an allreduce call carries at most (PyTorch DDP's default bucket).</summary>
    public const long DefaultBucketBytes = 25L << 20;

    private readonly MpiWorld _world;
    private readonly long _bucketBytes;
    private List<Parameter[]>? _buckets;
    private float[] _buffer = [];

    public MpiProcessGroup(MpiWorld world, long bucketBytes = DefaultBucketBytes)
    {
        _world = world;
        _bucketBytes = bucketBytes;
    }

    public int Rank => _world.Rank;
    public int Size => _world.Size;

    /// <summary>Time spent in the gradient allreduce (copying in and out included), for the log and the benchmark.</summary>
    public TimeSpan CommunicationTime { get; private set; }

    /// <summary>Gradient bytes one step sends into the allreduce.</summary>
    public long BytesPerStep { get; private set; }

    /// <summary>Allreduce calls one step makes (the buckets, plus the loss carried in the last).</summary>
    public int CallsPerStep => _buckets?.Count ?? 0;

    /// <summary>
    /// Fault injection for the tests of the tests (<c>STREAMING_FAULT=skip-allreduce</c>): every rank steps on its own
    /// gradients, as if the allreduce were missing, so that a check of data-parallel training can be seen to fail.
    /// </summary>
    public bool SkipAllreduce { get; init; } = Environment.GetEnvironmentVariable("STREAMING_FAULT") == "skip-allreduce";

    public (int Start, int Count) ShareOf(int batchRows)
    {
        if (batchRows % Size != 0)
            throw new Streaming.Core.StreamingException($"--batch {batchRows}: the global batch must split evenly over the {Size} ranks (B/N images each); use a multiple of {Size}");
        int each = batchRows / Size;
        return (Rank * each, each);
    }

    /// <summary>Rank 0's parameters, buffers (BatchNorm's running statistics) and momentum, on every rank.</summary>
    public void BroadcastState(nn.Module model, Sgd optimizer)
    {
        using var _ = no_grad();
        foreach (var (_, t) in model.state_dict().OrderBy(kv => kv.Key, StringComparer.Ordinal)) BroadcastInto(t);
        // The momentum buffers exist after the first step only: rank 0 says which it has, then sends them.
        var names = Gather(Rank == 0 ? string.Join('\n', optimizer.State.Keys.Order(StringComparer.Ordinal)) : "")[0]
            .Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (names.Length == 0) return;
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        var state = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var name in names)
        {
            var buffer = Rank == 0 ? optimizer.State[name].clone() : zeros_like(parameters[name]);
            BroadcastInto(buffer);
            state[name] = buffer;
        }
        optimizer.LoadState(state);
        foreach (var t in state.Values) t.Dispose();
    }

    /// <summary>Rank 0's values of <paramref name="t"/>, into every rank's (any dtype and memory layout).</summary>
    private void BroadcastInto(Tensor t)
    {
        using var scope = NewDisposeScope();
        var dense = t.contiguous().cpu();
        var bytes = dense.bytes.ToArray();
        _world.Broadcast(bytes);
        if (Rank == 0) return;
        dense.bytes = bytes;
        t.copy_(dense);
    }

    public float AverageGradients(nn.Module model, float loss)
    {
        if (SkipAllreduce) return loss;
        var clock = Stopwatch.StartNew();
        _buckets ??= Bucket(model);
        long bytes = 0;
        for (int b = 0; b < _buckets.Count; b++)
        {
            bool last = b == _buckets.Count - 1;
            int n = Flatten(_buckets[b], last ? loss : null);
            _world.AllreduceSum(_buffer.AsSpan(0, n));
            bytes += 4L * n;
            Unflatten(_buckets[b]);
            if (last) loss = _buffer[n - 1] / Size;
        }
        BytesPerStep = bytes;
        CommunicationTime += clock.Elapsed;
        return loss;
    }

    /// <summary>The trainable parameters in buckets of at most <see cref="DefaultBucketBytes"/>, in the model's order (the same on every rank).</summary>
    private List<Parameter[]> Bucket(nn.Module model)
    {
        var buckets = new List<Parameter[]>();
        var current = new List<Parameter>();
        long size = 0;
        foreach (var p in model.parameters().Where(p => p.requires_grad))
        {
            long bytes = 4 * p.numel();
            if (current.Count > 0 && size + bytes > _bucketBytes)
            {
                buckets.Add([.. current]);
                current.Clear();
                size = 0;
            }
            current.Add(p);
            size += bytes;
        }
        if (current.Count > 0 || buckets.Count == 0) buckets.Add([.. current]);
        return buckets;
    }

    /// <summary>The bucket's gradients, end to end (zeros for a parameter without one), then <paramref name="extra"/>; returns the count.</summary>
    private int Flatten(Parameter[] bucket, float? extra)
    {
        long total = bucket.Sum(p => p.numel()) + (extra is null ? 0 : 1);
        if (_buffer.Length < total) _buffer = new float[total];
        int at = 0;
        foreach (var p in bucket)
        {
            int n = checked((int)p.numel());
            using var scope = NewDisposeScope();
            if (p.grad is { } g && !g.IsInvalid) g.contiguous().to(float32).cpu().data<float>().CopyTo(_buffer, at);
            else Array.Clear(_buffer, at, n);
            at += n;
        }
        if (extra is float e) _buffer[at++] = e;
        return at;
    }

    /// <summary>The summed gradients, divided by the world size, back into each parameter's gradient (its layout kept).</summary>
    private void Unflatten(Parameter[] bucket)
    {
        int at = 0;
        using var _ = no_grad();
        foreach (var p in bucket)
        {
            int n = checked((int)p.numel());
            if (p.grad is { } g && !g.IsInvalid)
            {
                using var scope = NewDisposeScope();
                var mean = tensor(_buffer.AsSpan(at, n).ToArray(), p.shape).div_(Size);
                g.copy_(mean);
            }
            at += n;
        }
    }

    public IReadOnlyList<string> Gather(string mine) => _world.Allgather(mine);

    public long Broadcast(long value)
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, value);
        _world.Broadcast(bytes);
        return BinaryPrimitives.ReadInt64LittleEndian(bytes);
    }
}
