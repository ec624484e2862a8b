namespace Streaming.Models.Compute;

/// <summary>The process-global libtorch settings a job runs with: intra-op threads and the convolutions' memory layout.</summary>
/// <param name="Threads">libtorch intra-op threads (resolved: at least 1).</param>
/// <param name="ChannelsLast">Convolutions in channels-last (NHWC) memory.</param>
public sealed record ComputeSettings(int Threads, bool ChannelsLast)
{
    public override string ToString() => $"{Threads} threads, channels-last {(ChannelsLast ? "on" : "off")}";
}

/// <summary>
/// A job's hold on the process's compute settings (<see cref="Kernels.AcquireAsync"/>). While any lease is held, the
/// settings do not change: a job that needs others waits until every holder has let go, and a job nested in one that
/// holds other settings is refused. Disposing lets go.
/// </summary>
public sealed class ComputeLease : IDisposable
{
    private int _released;
    private volatile bool _granted;

    internal ComputeLease(ComputeSettings settings, ComputeLease? outer)
    {
        Settings = settings;
        Outer = outer;
    }

    /// <summary>The settings held.</summary>
    public ComputeSettings Settings { get; }

    /// <summary>The lease of the job this one is nested in (same settings), if any.</summary>
    internal ComputeLease? Outer { get; }

    /// <summary>The thread count held, for records.</summary>
    public int Threads => Settings.Threads;

    /// <summary>Whether the settings were granted (a lease still waiting, or cancelled while waiting, holds nothing).</summary>
    internal bool IsGranted => _granted;

    internal bool Released => Volatile.Read(ref _released) != 0;

    internal void Granted() => _granted = true;

    /// <summary>Given up while waiting (cancelled): holds nothing, and no longer counts as the flow's lease.</summary>
    internal void Abandon() => Interlocked.Exchange(ref _released, 1);

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0) Kernels.Release(this);
    }
}
