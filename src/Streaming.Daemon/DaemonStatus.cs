using System.Diagnostics;
using System.Globalization;
using System.Text;
using Streaming.Core.Selection;
using Streaming.Core.Dataflow;
using Streaming.Models.Teachers;
using Streaming.Engine.Scoring;

namespace Streaming.Daemon;

/// <summary>What the heaps' ledger last published for the endpoints: totals over every run of the state folder, heap fill, pointers, recent history.</summary>
public sealed record DaemonView(long ImagesScored, long ImagesQuarantined, int ShardsDone, int DropsQuarantined, IReadOnlyList<int> Fill, int K,
    IReadOnlyList<string> Classes, SnapshotPointer? Snapshot, HeapsPointer? Heaps, int Restarts, IReadOnlyList<DoneShard> RecentShards,
    IReadOnlyList<QuarantinedDrop> RecentQuarantinedDrops)
{
    public static readonly DaemonView Empty = new(0, 0, 0, 0, [], 0, [], null, null, 0, [], []);
}

/// <summary>
/// What the endpoints report: the view the heaps' ledger publishes after every change (so a request never waits for
/// the daemon's gate, nor compacts a heap), the scoring graph's per-stage counters, and live counters kept here.
/// </summary>
public sealed class DaemonStatus
{
    private readonly Stopwatch _uptime = Stopwatch.StartNew();
    private readonly Queue<(double T, long Scored)> _window = new();
    private long _scoredThisRun, _inFlight;
    private volatile DaemonView _view = DaemonView.Empty;

    public volatile bool Ready;
    public volatile string? Fatal;
    public volatile bool MemoryPaused;

    /// <summary>limits.memory_mb in bytes (for the alert on memory near the limit).</summary>
    public long MemoryLimitBytes { get; set; }
    /// <summary>Why no new shard is taken for now (the state folder's disk is full); null when all is well.</summary>
    public volatile string? Degraded;
    /// <summary>ENOSPC (or EDQUOT): a write failed for want of room, which says nothing about what was being written.</summary>
    public static bool IsDiskFull(IOException e) => e.HResult is 28 or 122 || e.Message.Contains("No space left", StringComparison.Ordinal);

    /// <summary>A write to the state folder failed (<paramref name="what"/> says which): degraded, no new shard taken, until a probe write succeeds.</summary>
    public void WriteFailed(IOException e, string what) => Degraded = IsDiskFull(e)
        ? $"the state folder's disk is full ({e.Message}); no new shard is taken until there is room"
        : $"{what} failed ({e.Message}); no new shard is taken until the state folder takes writes";

    /// <summary>Why the last heaps checkpoint failed; null once one succeeds.</summary>
    public volatile string? CheckpointFailed;
    private long _loopBeat = Stopwatch.GetTimestamp();
    private volatile string? _loopOn;

    /// <summary>The inbox loop's heartbeat: called each turn and while a long step (an ingest) makes progress.</summary>
    public void Beat(string? on = null)
    {
        Interlocked.Exchange(ref _loopBeat, Stopwatch.GetTimestamp());
        _loopOn = on;
    }

    /// <summary>Seconds since the inbox loop last moved.</summary>
    public double LoopIdleSeconds => Stopwatch.GetElapsedTime(Interlocked.Read(ref _loopBeat)).TotalSeconds;

    /// <summary>How long the loop may stand still before /healthz calls it stuck.</summary>
    public TimeSpan StuckAfter { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// /healthz: 503 when the daemon cannot do its work (it stopped, its inbox loop is stuck, or checkpoints fail);
    /// 200 "degraded" when it waits for something outside it (disk space); 200 "ok" otherwise.
    /// </summary>
    public (bool Healthy, string Text) Health()
    {
        if (Fatal is string fatal) return (false, $"failed: {fatal}");
        if (LoopIdleSeconds > StuckAfter.TotalSeconds)
            return (false, $"unhealthy: the inbox loop has not moved for {LoopIdleSeconds:F0} s (watch.stuck_seconds){(_loopOn is string on ? $", on {on}" : "")}");
        if (CheckpointFailed is string checkpoint) return (false, $"unhealthy: the heaps checkpoint failed: {checkpoint}");
        if (Degraded is string degraded) return (true, $"degraded: {degraded}");
        return (true, "ok");
    }
    private int _pending, _shardsFailed;

    /// <summary>Drops in the inbox not yet finished: set at each listing (<see cref="Listed"/>), counted down as drops finish in between.</summary>
    public int Pending => Math.Max(0, Volatile.Read(ref _pending));

    /// <summary>The inbox was listed: <paramref name="present"/> drops are in it, in flight or not.</summary>
    public void Listed(int present) => Volatile.Write(ref _pending, present);

    /// <summary>A drop finished (processed or quarantined) since the last listing.</summary>
    public void DropFinished() => Interlocked.Decrement(ref _pending);

    /// <summary>Shards that could not be read, this run.</summary>
    public int ShardsFailed => Volatile.Read(ref _shardsFailed);

    public void ShardFailed() => Interlocked.Increment(ref _shardsFailed);
    public IReadOnlyList<StageStats> Stages { get; set; } = [];
    public string? HttpAddress { get; set; }

    /// <summary>The latest published view.</summary>
    public DaemonView View => _view;

    public long InFlight => Interlocked.Read(ref _inFlight);
    public void ShardSent() => Interlocked.Increment(ref _inFlight);
    public void ShardCollected() => Interlocked.Decrement(ref _inFlight);

    /// <summary>Replaces the view the endpoints read (the ledger calls it, under its gate, after each change).</summary>
    public void Publish(DaemonView view) => _view = view;

    public void Scored(long images)
    {
        Interlocked.Add(ref _scoredThisRun, images);
    }

    private readonly Queue<(double T, long Scored)> _hour = new();

    /// <summary>
    /// Images a second over the last hour, a point every 10 s (from the images scored by this process), for the
    /// dashboard: each point is (seconds ago, images a second over the 10 s before it).
    /// </summary>
    public IReadOnlyList<(double SecondsAgo, double ImagesPerSecond)> RateHistory()
    {
        SampleRate();
        double now = _uptime.Elapsed.TotalSeconds;
        long scored = Interlocked.Read(ref _scoredThisRun);
        lock (_hour)
        {
            var points = _hour.ToList();
            var rates = new List<(double, double)>();
            for (int i = 1; i < points.Count; i++)
                rates.Add((Math.Round(now - points[i].T, 1), Math.Round((points[i].Scored - points[i - 1].Scored) / Math.Max(1e-9, points[i].T - points[i - 1].T), 1)));
            if (points.Count > 0 && now - points[^1].T > 0.5)
                rates.Add((0, Math.Round((scored - points[^1].Scored) / (now - points[^1].T), 1)));
            return rates;
        }
    }

    /// <summary>Keeps a point of the hour's history every 10 s; the inbox loop calls it each turn, so the history fills whether or not anyone watches.</summary>
    public void SampleRate()
    {
        double now = _uptime.Elapsed.TotalSeconds;
        long scored = Interlocked.Read(ref _scoredThisRun);
        lock (_hour)
        {
            if (_hour.Count == 0 || now - _hour.Last().T >= 10) _hour.Enqueue((now, scored));
            while (_hour.Count > 0 && now - _hour.Peek().T > 3600) _hour.Dequeue();
        }
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

        var view = _view;
        One("streaming_images_scored_total", "counter", "Images scored and folded into the heaps (all runs of this state folder).", view.ImagesScored);
        One("streaming_images_per_second", "gauge", "Images scored a second over the last minute.", Rate());
        One("streaming_images_quarantined_total", "counter", "Images that failed to decode (all runs).", view.ImagesQuarantined);
        One("streaming_shards_done_total", "counter", "Shards scored and recorded (all runs).", view.ShardsDone);
        One("streaming_shards_failed_total", "counter", "Shards that could not be read (this run); their drops go to quarantine/.", ShardsFailed);
        One("streaming_drops_quarantined_total", "counter", "Inbox drops moved to quarantine/ with a reason (all runs).", view.DropsQuarantined);
        One("streaming_shards_pending", "gauge", "Drops in the inbox not yet finished (waiting, settling or being scored).", Pending);
        One("streaming_shards_in_flight", "gauge", "Shards inside the scoring graph now.", InFlight);
        One("streaming_memory_paused", "gauge", "1 while resident memory is over limits.memory_mb and no new shard is taken.", MemoryPaused ? 1 : 0);
        One("streaming_degraded", "gauge", "1 while no new shard is taken because the state folder's disk is full.", Degraded is null ? 0 : 1);
        One("streaming_healthy", "gauge", "1 while /healthz says ok or degraded; 0 when it says failed or unhealthy.", Health().Healthy ? 1 : 0);
        One("streaming_loop_idle_seconds", "gauge", "Seconds since the inbox loop last moved.", LoopIdleSeconds);
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
        var fill = view.Fill;
        var classes = view.Classes;
        Metric("streaming_heap_entries", "gauge", "Images each class's heap keeps (as of the latest checkpoint or snapshot).",
            fill.Select((n, c) => ((string?)$"class=\"{Escape(c < classes.Count ? classes[c] : c.ToString(inv))}\"", (double)n)));
        Metric("streaming_heap_fill_ratio", "gauge", "Each class's heap fill: entries / K (as of the latest checkpoint or snapshot).",
            fill.Select((n, c) => ((string?)$"class=\"{Escape(c < classes.Count ? classes[c] : c.ToString(inv))}\"", view.K > 0 ? (double)n / view.K : 0)));
        var snapshot = view.Snapshot;
        One("streaming_snapshot_version", "gauge", "Version of the latest published D-hat snapshot (0: none yet).", snapshot?.Version ?? 0);
        One("streaming_snapshot_age_seconds", "gauge", "Seconds since the latest snapshot was published (+Inf: none yet).",
            snapshot is null ? double.PositiveInfinity : (DateTime.UtcNow - snapshot.PublishedUtc).TotalSeconds);
        One("streaming_resident_memory_bytes", "gauge", "Resident set size of the daemon.", Core.ProcessStats.ResidentBytes());
        One("streaming_memory_limit_bytes", "gauge", "limits.memory_mb: above it the daemon takes no new shard.", MemoryLimitBytes);
        One("streaming_gc_heap_bytes", "gauge", "Managed heap size.", GC.GetTotalMemory(false));
        One("streaming_gc_committed_bytes", "gauge", "Memory the garbage collector has committed.", GC.GetGCMemoryInfo().TotalCommittedBytes);
        One("streaming_restarts_total", "counter", "Times this state folder was resumed after a stop or a crash.", view.Restarts);
        One("streaming_uptime_seconds", "gauge", "Seconds since this process started.", _uptime.Elapsed.TotalSeconds);
        One("streaming_ready", "gauge", "1 once the teacher is loaded and the heaps are recovered.", Ready ? 1 : 0);
        return sb.ToString();
    }

    /// <summary>A label value in the exposition format: backslash, double quote and newline escaped.</summary>
    public static string Escape(string value) => value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    /// <summary>/status: the same picture as JSON, with the recent history a person wants.</summary>
    public object StatusObject()
    {
        var view = _view;
        var snapshot = view.Snapshot;
        return new
        {
            ready = Ready,
            health = Health().Text,
            fatal = Fatal,
            degraded = Degraded,
            checkpoint_failed = CheckpointFailed,
            uptime_s = Math.Round(_uptime.Elapsed.TotalSeconds, 1),
            images_scored = view.ImagesScored,
            images_per_second = Math.Round(Rate(), 1),
            images_quarantined = view.ImagesQuarantined,
            shards_done = view.ShardsDone,
            shards_failed_this_run = ShardsFailed,
            shards_pending = Pending,
            shards_in_flight = InFlight,
            drops_quarantined = view.DropsQuarantined,
            memory_paused = MemoryPaused,
            resident_mb = Core.ProcessStats.ResidentBytes() >> 20,
            snapshot = snapshot is null ? null : new { version = snapshot.Version, folder = snapshot.Folder, covers_shards = snapshot.Covers, published_utc = snapshot.PublishedUtc },
            heaps = view.Heaps,
            restarts = view.Restarts,
            stages = Stages.Select(s => s.Snapshot()).ToList(),
            recent_shards = view.RecentShards,
            recent_quarantined_drops = view.RecentQuarantinedDrops,
            snapshot_age_s = snapshot is null ? (double?)null : Math.Round((DateTime.UtcNow - snapshot.PublishedUtc).TotalSeconds, 1),
            rate_history = RateHistory().Select(r => new { seconds_ago = r.SecondsAgo, images_per_second = r.ImagesPerSecond }),
            k = view.K,
            heap_fill = view.Fill.Select((n, c) => new { @class = c < view.Classes.Count ? view.Classes[c] : c.ToString(CultureInfo.InvariantCulture), kept = n }),
        };
    }
}
