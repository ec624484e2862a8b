using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Streaming.Core;
using Streaming.Core.Datasets;
using Streaming.Core.Ingest;
using Streaming.Core.Selection;
using Streaming.Models;
using Streaming.Models.IO;
using Streaming.Core.Dataflow;
using Streaming.Models.Teachers;
using Streaming.Engine.Scoring;
using Streaming.Engine.Scoring.Stages;

namespace Streaming.Daemon;

/// <summary>
/// The daemon's work: watch the inbox, score each new shard through one long-lived <see cref="ScoreGraph"/>,
/// fold its scores into the persistent per-class heaps, record it as done, publish D-hat snapshots.
/// </summary>
/// <remarks>
/// Crash safety comes from the order of the steps for each shard: (1) the score shard is written (temporary
/// name, rename); (2) a line is appended to done.jsonl and flushed: the shard is now done, exactly once; (3) the
/// drop is moved out of the inbox. A restart after (1) scores the shard again (same bytes); after (2) it only
/// moves the drop. The heaps are checkpointed every few shards and cover a prefix of done.jsonl; the shards
/// after that prefix are replayed from their score shards, so the heaps after a restart are those of an
/// uninterrupted run (selection is a pure function of the scores).
/// </remarks>
public sealed class DaemonWorker : BackgroundService
{
    private readonly DaemonConfig _config;
    private readonly DaemonStatus _status;
    private readonly ILogger _log;
    private readonly SemaphoreSlim _gate = new(1, 1); // the selector and the state: one user at a time
    // Shared by the inbox loop and the graph's collector.
    private readonly ConcurrentDictionary<string, DropWork> _drops = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _inFlightKeys = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _doneKeys = new(StringComparer.Ordinal);
    private DaemonState _state = new();
    private Selector? _selector;
    private int _sinceCheckpoint, _sinceSnapshot;
    private DateTime _lastChange = DateTime.MinValue;
    private FileStream? _lock;

    private readonly DateTime _startedUtc = DateTime.UtcNow;

    public DaemonWorker(DaemonConfig config, DaemonStatus status, ILoggerFactory logs)
    {
        _config = config;
        _status = status;
        _log = logs.CreateLogger("streaming.daemon");
    }

    private string State => _config.State;
    private string Scores => Path.Combine(State, "scores");
    private string Heaps => Path.Combine(State, "heaps");
    private string Snapshots => Path.Combine(State, "snapshots");
    private string Ingested => Path.Combine(State, "ingested");
    private string Processed => Path.Combine(State, "processed");
    private string Quarantine => Path.Combine(State, "quarantine");

    private sealed class DropWork(Drop drop)
    {
        public Drop Drop { get; } = drop;
        /// <summary>Shards sent and not yet collected, plus one held by the sender until it has sent them all.</summary>
        public int Pending;
        public bool Sent;
        public List<string> Failures { get; } = [];
        public Stopwatch Clock { get; } = Stopwatch.StartNew();
    }

    private sealed record WorkShard(DropWork Drop, string Path, string Input, string Key, Stopwatch Clock);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await RunAsync(stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            _status.Fatal = e is StreamingException ? e.Message : e.ToString();
            _log.LogCritical(e, "daemon stopped: {Error}", e.Message);
            throw;
        }
    }

    private async Task RunAsync(CancellationToken stop)
    {
        Directory.CreateDirectory(State);
        foreach (var d in new[] { Scores, Heaps, Snapshots, Ingested, Processed, Quarantine }) Directory.CreateDirectory(d);
        try
        {
            _lock = new FileStream(Path.Combine(State, "lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            throw new StreamingException($"{State}: another daemon is using this state folder");
        }

        Streaming.Models.Compute.Kernels.Configure(_config.Isa, _config.Threads, _config.ChannelsLast, "compute.isa");
        var device = TorchDevice.Resolve(_config.Device);
        string teacherPath = Teachers.Resolve(_config.Teacher);
        using var teacher = Teachers.Open(teacherPath, device, null, _config.Threads);
        int topP = Math.Min(_config.TopP, teacher.Spec.NumClasses);
        if (_config.P > topP) throw new StreamingException($"scoring.p ({_config.P}) exceeds the teacher's {teacher.Spec.NumClasses} classes");
        await RecoverAsync(Hashing.Sha256File(teacherPath), teacher.Spec.Classes, stop).ConfigureAwait(false);

        var inbox = new Inbox(_config.Inbox, _config.Settle);
        // On SIGTERM the graph stops at once: the batch in inference finishes (it cannot be interrupted) and the
        // shard being recorded is recorded; a shard cut off halfway is scored again on restart.
        using var graphStop = CancellationTokenSource.CreateLinkedTokenSource(stop);
        var sink = new ShardSink(ScoreFile, _selector, CommittedAsync, FailedAsync, _gate);
        var graph = new ScoreGraph(teacher, topP, _config.Batch, _config.DecodeWorkers, sink, graphStop.Token);
        _status.Stages = graph.Stages;
        _status.Ready = true;
        _log.LogInformation("watching {Inbox}; state in {State}; K={K} P={P} top_p={TopP} {Balance}; {Done} shards done before",
            _config.Inbox, State, _config.K, _config.P, topP, _config.BalanceName, _state.Done.Count);
        try
        {
            while (!stop.IsCancellationRequested)
            {
                bool sent = false;
                var drops = inbox.Scan();
                // Everything in the inbox now, in flight or not; finished drops count it down until the next listing.
                Volatile.Write(ref _status.Pending, inbox.Present);
                foreach (var drop in drops)
                {
                    if (stop.IsCancellationRequested) break;
                    // The listing may be stale: a drop finished since then has left the inbox.
                    if (!File.Exists(drop.Path) && !Directory.Exists(drop.Path)) continue;
                    var work = _drops.GetOrAdd(drop.Name, _ => new DropWork(drop));
                    if (work.Sent) continue;
                    try
                    {
                        sent |= await StartDropAsync(work, graph, stop).ConfigureAwait(false);
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException && !work.Sent)
                    {
                        // Removed or unreadable before any of it was sent: nothing to undo; look again next time.
                        _drops.TryRemove(drop.Name, out _);
                        if (File.Exists(drop.Path) || Directory.Exists(drop.Path))
                            _log.LogWarning("drop {Drop}: {Error}; will try again", drop.Name, e.Message);
                    }
                }
                if (!sent)
                {
                    bool idle = _drops.IsEmpty && _status.InFlight == 0;
                    await MaybeSnapshotAsync(idle, stop).ConfigureAwait(false);
                    ReturnMemory(idle);
                }
                await Task.Delay(_config.Poll, stop).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
        finally
        {
            // Shutdown: no new work; the batch in inference finishes, the shard being collected is recorded or
            // not at all, then the heaps are checkpointed. A shard cut off halfway is scored again on restart.
            _status.Ready = false;
            graphStop.Cancel();
            try
            {
                await graph.Completion.ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException || graph.Completion.IsCanceled)
            {
            }
            catch (Exception e)
            {
                _log.LogError(e, "scoring stopped with an error");
            }
            await _gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
            try
            {
                if (_selector is not null && (_state.Heaps?.Covers ?? 0) < _state.Done.Count) await CheckpointAsync().ConfigureAwait(false);
            }
            finally
            {
                _gate.Release();
            }
            _log.LogInformation("stopped: {Done} shards done, heaps checkpointed", _state.Done.Count);
            _lock?.Dispose();
        }
    }

    private DateTime _lastTrim = DateTime.MinValue;
    private long _scoredAtTrim = -1;

    /// <summary>
    /// When idle (at most every 30 s, and only after new work; every 5 minutes when never idle): a full compacting collection, the large-object
    /// heap included, and glibc's malloc_trim. Without it a daemon that scores a shard now and then keeps the
    /// garbage of each one (shard buffers on the large-object heap, freed native buffers) until the runtime
    /// happens to need the memory, and its resident size creeps up for hours; with it, it stays flat.
    /// </summary>
    private void ReturnMemory(bool idle)
    {
        long scored = _state.Done.Count;
        var since = DateTime.UtcNow - _lastTrim;
        if (scored == _scoredAtTrim || since < TimeSpan.FromSeconds(30) || (!idle && since < TimeSpan.FromMinutes(5))) return;
        _scoredAtTrim = scored;
        _lastTrim = DateTime.UtcNow;
        System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        Posix.TrimNativeHeap();
    }

    /// <summary>Loads (or starts) the state, checks it belongs to this config, and rebuilds the heaps exactly.</summary>
    private async Task RecoverAsync(string teacherSha, IReadOnlyList<string> classes, CancellationToken stop)
    {
        var identity = _config.Identity(teacherSha);
        var state = DaemonState.Load(State);
        if (state is null)
        {
            state = new DaemonState { Identity = identity, Classes = classes.ToList() };
        }
        else
        {
            var changed = identity.Where(kv => !state.Identity.TryGetValue(kv.Key, out var v) || v != kv.Value)
                .Select(kv => $"{kv.Key}: {(state.Identity.TryGetValue(kv.Key, out var v) ? v : "(none)")} -> {kv.Value}").ToList();
            if (changed.Count > 0)
                throw new StreamingException($"{Path.Combine(State, DaemonState.FileName)}: this state folder was built with other settings ({string.Join("; ", changed)}); " +
                    "its heaps and snapshots would mix two selections. Use a new state folder, or the settings it was built with.");
            state.Restarts++;
        }
        var compute = Streaming.Models.Compute.Kernels.Current(_config.Threads);
        if (state.Compute is { } before && before.KernelDifferences(compute) is { Count: > 0 } differences)
            _log.LogWarning("the kernels changed since the state folder's last start ({Differences}): new score shards will not be byte-identical to what the old kernels would have written",
                string.Join("; ", differences));
        state.Compute = compute;
        _log.LogInformation("kernels: {Compute}", compute);
        _state = state;
        // Leftovers of writes cut short (never the inbox's: it may sit inside the state folder).
        foreach (var dir in new[] { State, Scores, Heaps, Snapshots, Ingested })
        {
            foreach (var partial in Directory.EnumerateFiles(dir, "*.partial")) File.Delete(partial);
            foreach (var partial in Directory.EnumerateDirectories(dir, "*.partial")) Directory.Delete(partial, true);
        }

        _selector = state.Heaps is { } h
            ? await HeapCheckpoint.ReadAsync(Path.Combine(State, h.File), stop).ConfigureAwait(false)
            : new Selector(classes.Count, _config.K, _config.P, _config.Balance, _config.Seed);
        int covers = state.Heaps?.Covers ?? 0;
        if (covers > state.Done.Count) throw new StreamingException($"{State}: the heaps checkpoint covers {covers} shards but done.jsonl lists {state.Done.Count}");
        var clock = Stopwatch.StartNew();
        for (int i = covers; i < state.Done.Count; i++)
        {
            string file = Path.Combine(State, state.Done[i].ScoreFile);
            if (!File.Exists(file)) throw new StreamingException($"{file}: the score shard of done shard '{state.Done[i].Input}' is missing; the heaps cannot be rebuilt");
            await foreach (var batch in ScoreShards.ReadBatchesAsync(file, stop).ConfigureAwait(false)) _selector.Offer(batch);
        }
        foreach (var d in state.Done) _doneKeys[d.Key] = 0;
        if (state.Done.Count > covers)
        {
            _log.LogInformation("replayed {Count} shards after the heaps checkpoint from their score shards in {Seconds:F1} s", state.Done.Count - covers, clock.Elapsed.TotalSeconds);
            await CheckpointAsync().ConfigureAwait(false);
        }
        state.Save(State);
        _status.Attach(state, _selector, _gate, _config.K);
        if (state.Snapshot is not null) _sinceSnapshot = state.Done.Count - state.Snapshot.Covers;
        else _sinceSnapshot = state.Done.Count;
        if (_sinceSnapshot > 0) _lastChange = DateTime.UtcNow;
    }

    /// <summary>Turns a drop into shards (ingesting folders and tars, reading shard lists) and sends the new ones to the graph.</summary>
    private async Task<bool> StartDropAsync(DropWork work, ScoreGraph graph, CancellationToken stop)
    {
        var drop = work.Drop;
        List<(string Path, string Input)> shards;
        try
        {
            shards = drop.Kind switch
            {
                DropKind.Shard => [(drop.Path, drop.Name)],
                DropKind.Folder or DropKind.Tar => await IngestAsync(drop, stop).ConfigureAwait(false),
                DropKind.ShardList => ReadShardList(drop),
                _ => throw new StreamingException($"not something the daemon takes: drop image shards (.parquet), folders of images, tar shards (.tar) or shard lists (.list, .txt: one shard path a line)"),
            };
        }
        catch (StreamingException e)
        {
            await Locked(() => QuarantineDrop(work, e.Message)).ConfigureAwait(false);
            return false;
        }
        // Shards are known by their content: one dropped again (under any name) is not scored or counted twice,
        // and a drop whose shard is being scored under another name waits for it.
        var keyed = new List<(string Path, string Input, string Key)>();
        foreach (var (path, input) in shards)
        {
            string key = Hashing.Sha256File(path);
            if (_inFlightKeys.ContainsKey(key)) return false;
            if (!_doneKeys.ContainsKey(key) && !keyed.Any(k => k.Key == key)) keyed.Add((path, input, key));
        }
        work.Sent = true;
        work.Pending = 1; // the sender's hold: the drop cannot finish before every shard is sent
        foreach (var (path, input, key) in keyed)
        {
            await WaitForMemoryAsync(stop).ConfigureAwait(false);
            Interlocked.Increment(ref work.Pending);
            _inFlightKeys[key] = 0;
            _status.ShardSent();
            await graph.SendShardAsync(path, input, new WorkShard(work, path, input, key, Stopwatch.StartNew())).ConfigureAwait(false);
        }
        if (keyed.Count == 0) _log.LogInformation("drop {Drop}: every shard in it was scored before; nothing to do", drop.Name);
        await Locked(() =>
        {
            if (Interlocked.Decrement(ref work.Pending) == 0) FinishDrop(work);
        }).ConfigureAwait(false);
        return keyed.Count > 0;
    }

    private async Task Locked(Action action)
    {
        await _gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            action();
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<List<(string, string)>> IngestAsync(Drop drop, CancellationToken stop)
    {
        if (!_state.Ingested.TryGetValue(drop.Name, out var folder) || !File.Exists(Path.Combine(State, folder, DatasetManifest.FileName)))
        {
            folder = Path.Combine("ingested", drop.Name.Replace('.', '_'));
            string target = Path.Combine(State, folder), temp = target + ".partial";
            if (Directory.Exists(temp)) Directory.Delete(temp, true);
            if (Directory.Exists(target)) Directory.Delete(target, true);
            var clock = Stopwatch.StartNew();
            var result = await Ingestor.RunAsync(ImageSource.Open(drop.Path), temp, new IngestOptions { Name = drop.Name, Workers = _config.DecodeWorkers, IdPrefix = drop.Name + "/" },
                cancellationToken: stop).ConfigureAwait(false);
            if (result.Manifest.Rows == 0) { Directory.Delete(temp, true); throw new StreamingException($"no images in it ({result.Read} read, {result.Ignored} ignored)"); }
            AtomicFile.CommitDirectory(temp, target);
            await Locked(() =>
            {
                _state.Ingested[drop.Name] = folder;
                _state.Save(State);
            }).ConfigureAwait(false);
            _log.LogInformation("drop {Drop}: ingested {Rows} images into {Shards} shards in {Seconds:F1} s", drop.Name, result.Manifest.Rows, result.Manifest.Shards.Count, clock.Elapsed.TotalSeconds);
        }
        var manifest = DatasetManifest.Load(Path.Combine(State, folder));
        return manifest.Shards.Select(s => (Path.Combine(State, folder, s.File), $"{drop.Name}/{s.File}")).ToList();
    }

    private static List<(string, string)> ReadShardList(Drop drop)
    {
        string dir = Path.GetDirectoryName(drop.Path)!;
        var result = new List<(string, string)>();
        var missing = new List<string>();
        int lineNo = 0;
        foreach (var raw in File.ReadLines(drop.Path))
        {
            lineNo++;
            string line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            string path = Path.IsPathRooted(line) ? line : Path.GetFullPath(Path.Combine(dir, line));
            if (!File.Exists(path)) missing.Add($"line {lineNo}: {path}");
            else if (!path.EndsWith(".parquet", StringComparison.OrdinalIgnoreCase)) missing.Add($"line {lineNo}: {path} is not a .parquet image shard");
            else result.Add((path, $"{drop.Name}:{Path.GetFileName(path)}"));
        }
        if (missing.Count > 0) throw new StreamingException($"shard list with {missing.Count} bad entries (nothing from it was scored): {string.Join("; ", missing.Take(5))}{(missing.Count > 5 ? "; ..." : "")}");
        if (result.Count == 0) throw new StreamingException("shard list names no shards");
        return result;
    }

    /// <summary>Above the memory bound no new shard enters the graph; the work waits in the inbox, and the metrics show it.</summary>
    private async Task WaitForMemoryAsync(CancellationToken stop)
    {
        bool warned = false;
        while (ProcessStats.ResidentBytes() > _config.MemoryLimitBytes)
        {
            GC.Collect();
            if (ProcessStats.ResidentBytes() <= _config.MemoryLimitBytes) break;
            _status.MemoryPaused = true;
            if (!warned) _log.LogWarning("resident memory {Mb} MB is over limits.memory_mb ({Limit} MB): taking no new shard until it falls",
                ProcessStats.ResidentBytes() >> 20, _config.MemoryLimitBytes >> 20);
            warned = true;
            await Task.Delay(_config.Poll, stop).ConfigureAwait(false);
        }
        _status.MemoryPaused = false;
    }

    /// <summary>Where a shard's score shard goes: named by the input shard and its content, so two drops never share one.</summary>
    private string ScoreFile(ShardJob job)
    {
        var w = (WorkShard)job.Tag!;
        return Path.Combine(Scores, $"score-{Path.GetFileNameWithoutExtension(w.Path)}-{w.Key[..12]}.parquet");
    }

    /// <summary>The sink calls this, under the gate, once a shard's score shard is durable and its rows are in the heaps.</summary>
    private async ValueTask CommittedAsync(ShardCommit c)
    {
        var w = (WorkShard)c.Shard.Tag!;
        _inFlightKeys.TryRemove(w.Key, out _);
        _status.ShardCollected();
        var done = new DoneShard(w.Key, w.Input, w.Drop.Drop.Name, Path.GetRelativePath(State, c.ScoreFile), c.Sha256, c.Rows,
            c.Quarantined, Math.Round(w.Clock.Elapsed.TotalSeconds, 3), DateTime.UtcNow);
        _state.AppendDone(State, done);
        _doneKeys[w.Key] = 0;
        _status.Scored(c.Rows);
        _sinceCheckpoint++;
        _sinceSnapshot++;
        _lastChange = DateTime.UtcNow;
        _log.LogInformation("shard {Input} scored: {Rows} images, {Quarantined} quarantined, {Seconds:F2} s, {Rate:F0} images/s",
            w.Input, c.Rows, c.Quarantined, done.Seconds, c.Rows / Math.Max(1e-6, done.Seconds));
        if (_sinceCheckpoint >= _config.CheckpointEveryShards) await CheckpointAsync().ConfigureAwait(false);
        if (_config.SnapshotEveryShards > 0 && _sinceSnapshot >= _config.SnapshotEveryShards) await PublishAsync("every_shards").ConfigureAwait(false);
        if (Interlocked.Decrement(ref w.Drop.Pending) == 0) FinishDrop(w.Drop);
    }

    /// <summary>The sink calls this, under the gate, for a shard that could not be read: its drop goes to quarantine once the rest of it is done.</summary>
    private ValueTask FailedAsync(ShardJob job, string error)
    {
        var w = (WorkShard)job.Tag!;
        _inFlightKeys.TryRemove(w.Key, out _);
        _status.ShardCollected();
        w.Drop.Failures.Add($"{w.Input}: {error}");
        _status.ShardsFailed++;
        _log.LogWarning("shard {Input} failed: {Error}", w.Input, error);
        if (Interlocked.Decrement(ref w.Drop.Pending) == 0) FinishDrop(w.Drop);
        return ValueTask.CompletedTask;
    }

    /// <summary>Writes the heaps (covering every done shard) and points the state at them.</summary>
    private async Task CheckpointAsync()
    {
        var clock = Stopwatch.StartNew();
        int covers = _state.Done.Count;
        string name = $"heaps-{covers:D9}.arrow";
        await HeapCheckpoint.WriteAsync(Path.Combine(Heaps, name), _selector!, CancellationToken.None).ConfigureAwait(false);
        string? old = _state.Heaps?.File;
        _state.Heaps = new HeapsPointer(Path.Combine("heaps", name), covers);
        _state.Save(State);
        foreach (var f in Directory.EnumerateFiles(Heaps, "heaps-*.arrow"))
            if (Path.GetFileName(f) != name) File.Delete(f);
        _sinceCheckpoint = 0;
        _log.LogDebug("heaps checkpointed over {Covers} shards in {Seconds:F2} s (was {Old})", covers, clock.Elapsed.TotalSeconds, old);
    }

    private async Task MaybeSnapshotAsync(bool idle, CancellationToken stop)
    {
        if (_sinceSnapshot == 0) return;
        var last = _state.Snapshot?.PublishedUtc ?? _startedUtc;
        string? why = null;
        if (idle && _config.SnapshotOnIdle && DateTime.UtcNow - _lastChange >= _config.Poll) why = "idle";
        else if (_config.SnapshotEvery > TimeSpan.Zero && DateTime.UtcNow - last >= _config.SnapshotEvery) why = "every_minutes";
        if (why is null) return;
        await _gate.WaitAsync(stop).ConfigureAwait(false);
        try
        {
            if (_sinceSnapshot > 0) await PublishAsync(why).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// A new immutable snapshot folder (the same dhat.parquet + selection.json as <c>select</c>), then the
    /// <c>latest</c> link swapped by a rename (atomic), then old snapshots pruned.
    /// </summary>
    private async Task PublishAsync(string why)
    {
        var clock = Stopwatch.StartNew();
        int version = (_state.Snapshot?.Version ?? 0) + 1;
        string name = version.ToString("D6", CultureInfo.InvariantCulture);
        string folder = Path.Combine(Snapshots, name), temp = folder + ".partial";
        if (Directory.Exists(temp)) Directory.Delete(temp, true);
        if (Directory.Exists(folder)) Directory.Delete(folder, true);
        var manifest = await SelectionWriter.WriteAsync(temp, _selector!, new SelectionManifest
        {
            Classes = _state.Classes,
            ScoreShards = _state.Done.Select(d => new ScoreShardEntry(d.ScoreFile, d.Rows, d.ScoreSha256)).ToList(),
        }, CancellationToken.None).ConfigureAwait(false);
        AtomicFile.CommitDirectory(temp, folder);
        string link = Path.Combine(Snapshots, "latest"), linkTemp = link + ".partial";
        File.Delete(linkTemp); // a leftover link (unlink; no error when absent)
        File.CreateSymbolicLink(linkTemp, name);
        AtomicFile.Rename(linkTemp, link);
        _state.Snapshot = new SnapshotPointer(version, Path.Combine("snapshots", name), _state.Done.Count, DateTime.UtcNow);
        _state.Save(State);
        _sinceSnapshot = 0;
        var kept = Directory.EnumerateDirectories(Snapshots).Select(Path.GetFileName).Where(n => n!.Length == 6 && n.All(char.IsAsciiDigit))
            .Order(StringComparer.Ordinal).ToList();
        foreach (var old in kept.Take(Math.Max(0, kept.Count - _config.SnapshotKeep)))
            if (old != name) Directory.Delete(Path.Combine(Snapshots, old!), true);
        _log.LogInformation("snapshot {Version} published ({Why}): {Selected} rows, {Distinct} distinct images over {Shards} shards, {Seconds:F2} s",
            name, why, manifest.Selected, manifest.DistinctImages, _state.Done.Count, clock.Elapsed.TotalSeconds);
    }

    /// <summary>Under the gate: moves a finished drop out of the inbox (to processed/, or to quarantine/ if a shard of it failed).</summary>
    private void FinishDrop(DropWork work)
    {
        _drops.TryRemove(work.Drop.Name, out _);
        Interlocked.Decrement(ref _status.Pending);
        if (work.Failures.Count > 0)
        {
            QuarantineDrop(work, string.Join("\n", work.Failures));
            return;
        }
        if (work.Drop.Kind == DropKind.ShardList || File.Exists(work.Drop.Path) || Directory.Exists(work.Drop.Path))
        {
            string target = Unique(Path.Combine(Processed, work.Drop.Name));
            Move(work.Drop.Path, target);
        }
        _log.LogDebug("drop {Drop} done in {Seconds:F1} s", work.Drop.Name, work.Clock.Elapsed.TotalSeconds);
    }

    /// <summary>Under the gate.</summary>
    private void QuarantineDrop(DropWork work, string reason)
    {
        if (_drops.TryRemove(work.Drop.Name, out _)) Interlocked.Decrement(ref _status.Pending); // (not when FinishDrop already did)
        string target = Unique(Path.Combine(Quarantine, work.Drop.Name));
        if (File.Exists(work.Drop.Path) || Directory.Exists(work.Drop.Path)) Move(work.Drop.Path, target);
        File.WriteAllText(target + ".reason.txt", reason + "\n");
        _state.AppendQuarantined(State, new QuarantinedDrop(work.Drop.Name, Path.GetRelativePath(State, target), reason, DateTime.UtcNow));
        _log.LogWarning("drop {Drop} quarantined: {Reason}", work.Drop.Name, reason);
    }

    private static void Move(string from, string to)
    {
        if (Directory.Exists(from)) Directory.Move(from, to);
        else File.Move(from, to);
    }

    private static string Unique(string path)
    {
        string candidate = path;
        for (int i = 1; File.Exists(candidate) || Directory.Exists(candidate) || File.Exists(candidate + ".reason.txt"); i++)
            candidate = $"{path}.{i}";
        return candidate;
    }
}

internal static partial class Posix
{
    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "malloc_trim")]
    private static partial int MallocTrim(nuint pad);

    /// <summary>Returns free native heap pages to the OS (glibc); a no-op where there is no malloc_trim (musl, macOS).</summary>
    internal static void TrimNativeHeap()
    {
        try
        {
            MallocTrim(0);
        }
        catch (EntryPointNotFoundException)
        {
        }
        catch (DllNotFoundException)
        {
        }
    }
}
