using Microsoft.Extensions.Logging;
using Streaming.Core;

namespace Streaming.Daemon;

/// <summary>
/// Keeps resident memory within <c>limits.memory_mb</c>: above it no new shard enters the graph (the work waits in the
/// inbox, and the metrics show it); and when the daemon is idle it hands memory back to the system.
/// </summary>
internal sealed class MemoryGovernor(DaemonConfig config, DaemonStatus status, ILogger log)
{
    private DateTime _lastTrim = DateTime.MinValue;
    private long _scoredAtTrim = -1;

    /// <summary>Waits while resident memory is over the bound (after one collection to see whether it falls).</summary>
    public async Task WaitForMemoryAsync(CancellationToken stop)
    {
        bool warned = false;
        while (ProcessStats.ResidentBytes() > config.MemoryLimitBytes)
        {
            GC.Collect();
            if (ProcessStats.ResidentBytes() <= config.MemoryLimitBytes) break;
            status.MemoryPaused = true;
            if (!warned) log.LogWarning("resident memory {Mb} MB is over limits.memory_mb ({Limit} MB): taking no new shard until it falls",
                ProcessStats.ResidentBytes() >> 20, config.MemoryLimitBytes >> 20);
            warned = true;
            await Task.Delay(config.Poll, stop).ConfigureAwait(false);
        }
        status.MemoryPaused = false;
    }

    /// <summary>
    /// When idle (at most every 30 s, and only after new work; every 5 minutes when never idle): a full compacting
    /// collection, the large-object heap included, and glibc's malloc_trim. Without it a daemon that scores a shard now
    /// and then keeps the garbage of each one (shard buffers on the large-object heap, freed native buffers) until the
    /// runtime happens to need the memory, and its resident size creeps up for hours; with it, it stays flat.
    /// </summary>
    public void ReturnMemory(bool idle, long scored)
    {
        var since = DateTime.UtcNow - _lastTrim;
        if (scored == _scoredAtTrim || since < TimeSpan.FromSeconds(30) || (!idle && since < TimeSpan.FromMinutes(5))) return;
        _scoredAtTrim = scored;
        _lastTrim = DateTime.UtcNow;
        System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        Posix.TrimNativeHeap();
    }
}
