using Streaming.Core.Compute;

namespace Streaming.Core.Options;

/// <summary>
/// Where and how libtorch runs a job: its intra-op threads, device, kernel ISA and memory layout. Each value is checked
/// when it is set, against its shared setting (<see cref="Knobs"/>), whose default it starts from.
/// </summary>
public sealed record ComputeSpec
{
    private readonly int _threads = Knobs.Threads.Default;
    private readonly string _device = Knobs.Device.Default;

    /// <summary>libtorch intra-op threads; 0: all cores (see <see cref="ResolvedThreads"/>).</summary>
    public int Threads { get => _threads; init => _threads = Knobs.Threads.Check(value); }

    /// <summary><c>auto</c>, <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>.</summary>
    public string Device { get => _device; init => _device = Knobs.Device.Check(value); }

    public KernelIsa Isa { get; init; } = KernelIsas.Parse(Knobs.Isa.Default, Knobs.Isa.Key);

    public bool ChannelsLast { get; init; } = Knobs.ChannelsLast.Default;

    /// <summary>The thread count libtorch takes (0 resolved to the cores).</summary>
    public int ResolvedThreads => Knobs.ResolveThreads(Threads);

    /// <summary>Binds the compute keys of a validated YAML file (a daemon config, a pipeline manifest).</summary>
    public static ComputeSpec From(IReadOnlyDictionary<string, object> values)
    {
        T Get<T>(Knob<T> knob) => values.TryGetValue(knob.Key, out var v) ? (T)v : knob.Default;
        return new()
        {
            Threads = Get(Knobs.Threads),
            Device = Get(Knobs.Device),
            Isa = KernelIsas.Parse(Get(Knobs.Isa), Knobs.Isa.Key),
            ChannelsLast = Get(Knobs.ChannelsLast),
        };
    }
}
