using System.Diagnostics;
using System.Text.Json.Serialization;

namespace Streaming.Core.Dataflow;

/// <summary>
/// Counters of one dataflow stage: items in and out, time busy in its own work, time blocked handing
/// results to a full next stage, and (derived) time starved waiting for input. Thread-safe.
/// </summary>
public sealed class StageStats
{
    private long _in, _out, _busyTicks, _blockedTicks;
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    public StageStats(string name, int workers = 1)
    {
        Name = name;
        Workers = workers;
    }

    public string Name { get; }
    public int Workers { get; }
    public Func<int>? QueueDepth { get; set; }

    public void In(long n = 1) => Interlocked.Add(ref _in, n);
    public void Out(long n = 1) => Interlocked.Add(ref _out, n);
    public void Busy(long ticks) => Interlocked.Add(ref _busyTicks, ticks);
    public void Blocked(long ticks) => Interlocked.Add(ref _blockedTicks, ticks);

    /// <summary>Times <paramref name="work"/> as busy time.</summary>
    public T Time<T>(Func<T> work)
    {
        long start = Stopwatch.GetTimestamp();
        try { return work(); }
        finally { Busy(Stopwatch.GetTimestamp() - start); }
    }

    public StageSnapshot Snapshot()
    {
        double wall = _clock.Elapsed.TotalSeconds * Workers;
        double busy = Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _busyTicks)).TotalSeconds;
        double blocked = Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _blockedTicks)).TotalSeconds;
        return new StageSnapshot(Name, Workers, Interlocked.Read(ref _in), Interlocked.Read(ref _out), busy, blocked,
            Math.Max(0, wall - busy - blocked), QueueDepth?.Invoke() ?? 0, wall > 0 ? busy / wall : 0);
    }
}

/// <summary>A stage's counters at one moment (seconds summed over its workers).</summary>
public sealed record StageSnapshot(
    [property: JsonPropertyName("stage")] string Stage,
    [property: JsonPropertyName("workers")] int Workers,
    [property: JsonPropertyName("items_in")] long ItemsIn,
    [property: JsonPropertyName("items_out")] long ItemsOut,
    [property: JsonPropertyName("busy_s")] double BusySeconds,
    [property: JsonPropertyName("blocked_s")] double BlockedSeconds,
    [property: JsonPropertyName("starved_s")] double StarvedSeconds,
    [property: JsonPropertyName("queue")] int Queue,
    [property: JsonPropertyName("utilization")] double Utilization);
