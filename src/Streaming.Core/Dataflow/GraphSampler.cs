using System.Diagnostics;
using System.Text.Json.Serialization;
using Streaming.Core;

namespace Streaming.Core.Dataflow;

/// <summary>One stage at one sample: cumulative counters (items out; busy, blocked and starved seconds summed over workers) and its queue.</summary>
public sealed record StageSample(
    [property: JsonPropertyName("stage")] string Stage,
    [property: JsonPropertyName("workers")] int Workers,
    [property: JsonPropertyName("items_out")] long ItemsOut,
    [property: JsonPropertyName("busy_s")] double Busy,
    [property: JsonPropertyName("blocked_s")] double Blocked,
    [property: JsonPropertyName("starved_s")] double Starved,
    [property: JsonPropertyName("queue")] int Queue);

/// <summary>Everything sampled at one moment: per stage, and the process (CPU seconds, RSS, GC pause seconds, all cumulative but RSS).</summary>
public sealed record ProfileSample(
    [property: JsonPropertyName("t")] double T,
    [property: JsonPropertyName("stages")] IReadOnlyList<StageSample> Stages,
    [property: JsonPropertyName("cpu_s")] double CpuSeconds,
    [property: JsonPropertyName("rss_bytes")] long Rss,
    [property: JsonPropertyName("gc_pause_s")] double GcPauseSeconds);

/// <summary>
/// Samples a running graph's stage counters and the process every <c>interval</c> (100 ms by default) on its own
/// thread. Reading the counters is a handful of interlocked reads a stage, so the graph does not notice (measured:
/// perf/RESULTS.md, profiling overhead).
/// </summary>
public sealed class GraphSampler : IDisposable
{
    private readonly IReadOnlyList<StageStats> _stages;
    private readonly List<ProfileSample> _samples = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly Timer _timer;

    public GraphSampler(IReadOnlyList<StageStats> stages, TimeSpan? interval = null)
    {
        _stages = stages;
        Sample();
        var every = interval ?? TimeSpan.FromMilliseconds(100);
        _timer = new Timer(_ => Sample(), null, every, every);
    }

    public IReadOnlyList<ProfileSample> Samples
    {
        get
        {
            lock (_samples) return _samples.ToList();
        }
    }

    /// <summary>Takes one sample now (the timer calls it; call it once more at the end for the final reading).</summary>
    public void Sample()
    {
        long start = Stopwatch.GetTimestamp();
        var stages = _stages.Select(s =>
        {
            var x = s.Snapshot();
            return new StageSample(x.Stage, x.Workers, x.ItemsOut, x.BusySeconds, x.BlockedSeconds, x.StarvedSeconds, x.Queue);
        }).ToList();
        var sample = new ProfileSample(_clock.Elapsed.TotalSeconds, stages, ProcessStats.CpuSeconds(), ProcessStats.ResidentBytes(), ProcessStats.GcPauseSeconds());
        lock (_samples) _samples.Add(sample);
        Interlocked.Add(ref _selfTicks, Stopwatch.GetTimestamp() - start);
    }

    private long _selfTicks;

    /// <summary>The time spent taking samples: the profiler's own cost, on one thread.</summary>
    public TimeSpan SelfTime => Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _selfTicks));

    public void Dispose()
    {
        _timer.Dispose();
        Sample();
    }
}
