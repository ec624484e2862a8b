using System.Diagnostics;
using System.Globalization;
using System.Text;
using Streaming.Core.Selection;
using Streaming.Core.Dataflow;
using Streaming.Models.Teachers;
using Streaming.Engine.Scoring;

namespace Streaming.Daemon;

/// <summary>
/// What the endpoints report: counters kept by the worker (those that must survive a restart come from the
/// state's logs, so they are exact), the scoring graph's per-stage counters, heap fill, snapshot age and memory.
/// </summary>
public sealed class DaemonStatus
{
    private readonly Stopwatch _uptime = Stopwatch.StartNew();
    private readonly Queue<(double T, long Scored)> _window = new();
    private long _scoredThisRun, _inFlight;
    private DaemonState? _state;
    private Selector? _selector;
    private SemaphoreSlim? _gate;
    private int[] _fill = [];
    private int _k;

    public volatile bool Ready;
    public volatile string? Fatal;
    public volatile bool MemoryPaused;
    /// <summary>Drops in the inbox not yet finished: set at each listing, and counted down as drops finish in between.</summary>
    public int Pending;
    public int ShardsFailed;
    public IReadOnlyList<StageStats> Stages { get; set; } = [];
    public string? HttpAddress { get; set; }

    public long InFlight => Interlocked.Read(ref _inFlight);
    public void ShardSent() => Interlocked.Increment(ref _inFlight);
    public void ShardCollected() => Interlocked.Decrement(ref _inFlight);

    internal void Attach(DaemonState state, Selector selector, SemaphoreSlim gate, int k)
    {
        _state = state;
        _selector = selector;
        _gate = gate;
        _k = k;
    }

    public void Scored(long images)
    {
        Interlocked.Add(ref _scoredThisRun, images);
    }

    /// <summary>Images a second over the last minute.</summary>
    public double Rate()
    {
        double now = _uptime.Elapsed.TotalSeconds;
        long scored = Interlocked.Read(ref _scoredThisRun);
        lock (_window)
        {
            _window.Enqueue((now, scored));
            while (_window.Count > 1 && now - _window.Peek().T > 60) _window.Dequeue();
            var first = _window.Peek();
            return now - first.T > 0.5 ? (scored - first.Scored) / (now - first.T) : 0;
        }
    }

    /// <summary>Per-class kept counts; read under the gate when it is free within a moment, else the last reading.</summary>
    private int[] Fill()
    {
        if (_selector is null || _gate is null) return _fill;
        if (!_gate.Wait(TimeSpan.FromMilliseconds(200))) return _fill;
        try
        {
            var fill = new int[_selector.Classes];
            for (int c = 0; c < fill.Length; c++) fill[c] = _selector.Count(c);
            return _fill = fill;
        }
        finally
        {
            _gate.Release();
        }
    }

    private (long Images, long Quarantined, int Shards, int Drops) Totals()
    {
        if (_state is null || _gate is null) return default;
        // The logs only grow, under the gate; a moment's wait gives a consistent reading.
        _gate.Wait();
        try
        {
            return (_state.Done.Sum(d => d.Rows), _state.Done.Sum(d => d.Quarantined), _state.Done.Count, _state.QuarantinedDrops.Count);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The Prometheus text exposition format (version 0.0.4).</summary>
    public string Metrics()
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        void Metric(string name, string type, string help, IEnumerable<(string? Labels, double Value)> samples)
        {
            sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
            sb.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
            foreach (var (labels, value) in samples)
            {
                sb.Append(name);
                if (labels is not null) sb.Append('{').Append(labels).Append('}');
                sb.Append(' ').Append(double.IsFinite(value) ? value.ToString(inv) : value > 0 ? "+Inf" : value < 0 ? "-Inf" : "NaN").Append('\n');
            }
        }
        void One(string name, string type, string help, double value) => Metric(name, type, help, [(null, value)]);

        var totals = Totals();
        One("streaming_images_scored_total", "counter", "Images scored and folded into the heaps (all runs of this state folder).", totals.Images);
        One("streaming_images_per_second", "gauge", "Images scored a second over the last minute.", Rate());
        One("streaming_images_quarantined_total", "counter", "Images that failed to decode (all runs).", totals.Quarantined);
        One("streaming_shards_done_total", "counter", "Shards scored and recorded (all runs).", totals.Shards);
        One("streaming_shards_failed_total", "counter", "Shards that could not be read (this run); their drops go to quarantine/.", ShardsFailed);
        One("streaming_drops_quarantined_total", "counter", "Inbox drops moved to quarantine/ with a reason (all runs).", totals.Drops);
        One("streaming_shards_pending", "gauge", "Drops in the inbox not yet finished (waiting, settling or being scored).", Math.Max(0, Volatile.Read(ref Pending)));
        One("streaming_shards_in_flight", "gauge", "Shards inside the scoring graph now.", InFlight);
        One("streaming_memory_paused", "gauge", "1 while resident memory is over limits.memory_mb and no new shard is taken.", MemoryPaused ? 1 : 0);
        var stages = Stages.Select(s => s.Snapshot()).ToList();
        Metric("streaming_stage_items_total", "counter", "Items through each scoring stage (this run).",
            stages.SelectMany(s => new[] { ($"stage=\"{s.Stage}\",direction=\"in\"", (double)s.ItemsIn), ($"stage=\"{s.Stage}\",direction=\"out\"", (double)s.ItemsOut) }).Select(x => ((string?)x.Item1, x.Item2)));
        Metric("streaming_stage_busy_seconds_total", "counter", "Seconds each stage spent on its own work, summed over its workers (this run).",
            stages.Select(s => ((string?)$"stage=\"{s.Stage}\"", s.BusySeconds)));
        Metric("streaming_stage_blocked_seconds_total", "counter", "Seconds each stage waited on a full next stage (this run).",
            stages.Select(s => ((string?)$"stage=\"{s.Stage}\"", s.BlockedSeconds)));
        Metric("streaming_stage_starved_seconds_total", "counter", "Seconds each stage waited for input (this run).",
            stages.Select(s => ((string?)$"stage=\"{s.Stage}\"", s.StarvedSeconds)));
        Metric("streaming_stage_queue_depth", "gauge", "Items queued at each stage's input now.",
            stages.Select(s => ((string?)$"stage=\"{s.Stage}\"", (double)s.Queue)));
        var fill = Fill();
        var classes = _state?.Classes ?? [];
        Metric("streaming_heap_entries", "gauge", "Images each class's heap keeps now.",
            fill.Select((n, c) => ((string?)$"class=\"{Escape(c < classes.Count ? classes[c] : c.ToString(inv))}\"", (double)n)));
        Metric("streaming_heap_fill_ratio", "gauge", "Each class's heap fill: entries / K.",
            fill.Select((n, c) => ((string?)$"class=\"{Escape(c < classes.Count ? classes[c] : c.ToString(inv))}\"", _k > 0 ? (double)n / _k : 0)));
        var snapshot = _state?.Snapshot;
        One("streaming_snapshot_version", "gauge", "Version of the latest published D-hat snapshot (0: none yet).", snapshot?.Version ?? 0);
        One("streaming_snapshot_age_seconds", "gauge", "Seconds since the latest snapshot was published (+Inf: none yet).",
            snapshot is null ? double.PositiveInfinity : (DateTime.UtcNow - snapshot.PublishedUtc).TotalSeconds);
        One("streaming_resident_memory_bytes", "gauge", "Resident set size of the daemon.", Core.ProcessStats.ResidentBytes());
        One("streaming_gc_heap_bytes", "gauge", "Managed heap size.", GC.GetTotalMemory(false));
        One("streaming_gc_committed_bytes", "gauge", "Memory the garbage collector has committed.", GC.GetGCMemoryInfo().TotalCommittedBytes);
        One("streaming_restarts_total", "counter", "Times this state folder was resumed after a stop or a crash.", _state?.Restarts ?? 0);
        One("streaming_uptime_seconds", "gauge", "Seconds since this process started.", _uptime.Elapsed.TotalSeconds);
        One("streaming_ready", "gauge", "1 once the teacher is loaded and the heaps are recovered.", Ready ? 1 : 0);
        return sb.ToString();
    }

    /// <summary>A label value in the exposition format: backslash, double quote and newline escaped.</summary>
    public static string Escape(string value) => value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    /// <summary>/status: the same picture as JSON, with the recent history a person wants.</summary>
    public object StatusObject()
    {
        var totals = Totals();
        var snapshot = _state?.Snapshot;
        List<DoneShard> recent;
        List<QuarantinedDrop> quarantined;
        _gate?.Wait();
        try
        {
            recent = _state?.Done.TakeLast(10).ToList() ?? [];
            quarantined = _state?.QuarantinedDrops.TakeLast(10).ToList() ?? [];
        }
        finally
        {
            _gate?.Release();
        }
        return new
        {
            ready = Ready,
            fatal = Fatal,
            uptime_s = Math.Round(_uptime.Elapsed.TotalSeconds, 1),
            images_scored = totals.Images,
            images_per_second = Math.Round(Rate(), 1),
            images_quarantined = totals.Quarantined,
            shards_done = totals.Shards,
            shards_failed_this_run = ShardsFailed,
            shards_pending = Math.Max(0, Volatile.Read(ref Pending)),
            shards_in_flight = InFlight,
            drops_quarantined = totals.Drops,
            memory_paused = MemoryPaused,
            resident_mb = Core.ProcessStats.ResidentBytes() >> 20,
            snapshot = snapshot is null ? null : new { version = snapshot.Version, folder = snapshot.Folder, covers_shards = snapshot.Covers, published_utc = snapshot.PublishedUtc },
            heaps = _state?.Heaps,
            restarts = _state?.Restarts ?? 0,
            stages = Stages.Select(s => s.Snapshot()).ToList(),
            recent_shards = recent,
            recent_quarantined_drops = quarantined,
        };
    }
}
