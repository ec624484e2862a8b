using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Streaming.Core;
using Streaming.Core.Compute;
using Streaming.Core.Selection;

namespace Streaming.Daemon;

/// <summary>
/// The daemon's heaps and what they are made of: the state (done.jsonl, quarantine.jsonl, state.json), the selector,
/// recovery at start and checkpoints. Every method runs under the daemon's gate. After each change it publishes a
/// <see cref="DaemonView"/> for the endpoints, which therefore never take the gate nor touch the heaps.
/// </summary>
/// <remarks>
/// The heaps checkpoint (Arrow IPC, LZ4) covers a prefix of done.jsonl; on restart the shards after that prefix are
/// replayed from their score shards, so the heaps after a restart are those of an uninterrupted run (selection is a
/// pure function of the scores).
/// </remarks>
internal sealed class HeapLedger(DaemonConfig config, DaemonPaths paths, DaemonStatus status, ILogger log)
{
    private readonly HashSet<string> _doneKeys = new(StringComparer.Ordinal);
    private long _images, _quarantined;
    private int[] _fill = [];

    public DaemonState State { get; private set; } = new();
    public Selector Selector { get; private set; } = null!;
    public int SinceCheckpoint { get; private set; }

    /// <summary>Done shards whose score shards recovery found missing or torn: to be scored again.</summary>
    public IReadOnlyList<DoneShard> Lost { get; private set; } = [];

    /// <summary>Whether a shard of this content was scored and recorded before (under any name).</summary>
    public bool IsDone(string key) => _doneKeys.Contains(key);

    /// <summary>Loads (or starts) the state, checks it belongs to this config, and rebuilds the heaps exactly.</summary>
    public async Task RecoverAsync(string teacherSha, IReadOnlyList<string> classes, ComputeEnvironment compute, CancellationToken stop)
    {
        var state = LoadState(config.Identity(teacherSha), classes);
        if (state.Compute is { } before && before.KernelDifferences(compute) is { Count: > 0 } differences)
            log.LogWarning("the kernels changed since the state folder's last start ({Differences}): new score shards will not be byte-identical to what the old kernels would have written",
                string.Join("; ", differences));
        state.Compute = compute;
        state.Engine = BuildInfo.Current;
        log.LogInformation("kernels: {Compute}", compute);
        State = state;
        RemoveLeftovers();
        Selector = state.Heaps is { } h
            ? await HeapCheckpoint.ReadAsync(Path.Combine(paths.State, h.File), stop).ConfigureAwait(false)
            : config.Scoring.NewSelector(classes.Count);
        int covers = state.Heaps?.Covers ?? 0;
        if (covers > state.Done.Count) throw new StreamingException($"{paths.State}: the heaps checkpoint covers {covers} shards but done.jsonl lists {state.Done.Count}");
        var clock = Stopwatch.StartNew();
        Lost = await ReplayAsync(state, covers, stop).ConfigureAwait(false);
        foreach (var d in state.Done)
        {
            _doneKeys.Add(d.Key);
            _images += d.Rows;
            _quarantined += d.Quarantined;
        }
        if (state.Done.Count > covers)
        {
            log.LogInformation("replayed {Count} shards after the heaps checkpoint from their score shards in {Seconds:F1} s", state.Done.Count - covers, clock.Elapsed.TotalSeconds);
            await CheckpointAsync().ConfigureAwait(false);
        }
        else
        {
            RefreshFill();
        }
        SaveAtStart(state);
        Publish();
    }

    /// <summary>The state folder's state, or a new one; refuses one built with other settings (its heaps would mix two selections).</summary>
    private DaemonState LoadState(SortedDictionary<string, string> identity, IReadOnlyList<string> classes)
    {
        var state = DaemonState.Load(paths.State);
        if (state is null) return new DaemonState { Identity = identity, Classes = classes.ToList() };
        var changed = identity.Where(kv => !state.Identity.TryGetValue(kv.Key, out var v) || v != kv.Value)
            .Select(kv => $"{kv.Key}: {(state.Identity.TryGetValue(kv.Key, out var v) ? v : "(none)")} -> {kv.Value}").ToList();
        if (changed.Count > 0)
            throw new StreamingException($"{Path.Combine(paths.State, DaemonState.FileName)}: this state folder was built with other settings ({string.Join("; ", changed)}); " +
                "its heaps and snapshots would mix two selections. Use a new state folder, or the settings it was built with.");
        state.Restarts++;
        return state;
    }

    /// <summary>
    /// Leftovers of writes cut short (never the inbox's: it may sit inside the state folder), except daemon.json's: the
    /// HTTP host writes it while recovery runs, and deleting its temporary file under it lost the file (its rename found
    /// nothing, and tools waiting for daemon.json waited for ever; seen once under load in the hung-file-system test).
    /// </summary>
    private void RemoveLeftovers()
    {
        foreach (var dir in new[] { paths.State, paths.Scores, paths.Heaps, paths.Snapshots, paths.Ingested })
        {
            foreach (var partial in Directory.EnumerateFiles(dir, "*" + AtomicFile.TempSuffix))
            {
                if (dir == paths.State && Path.GetFileName(partial) == DaemonHost.InfoFile + AtomicFile.TempSuffix) continue;
                // With a cluster, workers write score shards here: one of theirs may be in the middle of its write.
                if (config.Cluster is not null && DateTime.UtcNow - File.GetLastWriteTimeUtc(partial) < TimeSpan.FromMinutes(5)) continue;
                File.Delete(partial);
            }
            foreach (var partial in Directory.EnumerateDirectories(dir, "*" + AtomicFile.TempSuffix)) Directory.Delete(partial, true);
        }
    }

    /// <summary>
    /// Replays the shards after the checkpoint from their score shards. One that is missing or not what was recorded (a power
    /// loss before it reached the disk) is taken out of done.jsonl and returned, to be scored again.
    /// </summary>
    private async Task<List<DoneShard>> ReplayAsync(DaemonState state, int covers, CancellationToken stop)
    {
        var lost = new List<DoneShard>();
        for (int i = covers; i < state.Done.Count; i++)
        {
            var d = state.Done[i];
            string file = Path.Combine(paths.State, d.ScoreFile);
            string? why = !File.Exists(file) ? "missing" : Hashing.Sha256File(file) != d.ScoreSha256 ? "not what was recorded (torn)" : null;
            if (why is not null)
            {
                log.LogWarning("the score shard of done shard {Input} ({File}) is {Why}: it will be scored again", d.Input, d.ScoreFile, why);
                lost.Add(d);
                AtomicFile.TryDelete(file);
                continue;
            }
            await foreach (var batch in ScoreShards.ReadBatchesAsync(file, stop).ConfigureAwait(false)) Selector.Offer(batch);
        }
        if (lost.Count == 0) return lost;
        try
        {
            state.ForgetDone(paths.State, lost);
        }
        catch (IOException e)
        {
            // Scoring them again without taking them out of done.jsonl would record them twice.
            throw new StreamingException($"{Path.Combine(paths.State, DaemonState.DoneLog)}: {lost.Count} lost score shards cannot be taken out of it ({e.Message}); free space in the state folder and start again");
        }
        return lost;
    }

    /// <summary>
    /// state.json at start. Only the restart count and the kernels record are lost when it cannot be written; the next save
    /// writes them. A daemon restarted on a full disk starts degraded and waits for room, where it used to stop.
    /// </summary>
    private void SaveAtStart(DaemonState state)
    {
        try
        {
            state.Save(paths.State);
        }
        catch (IOException e)
        {
            status.WriteFailed(e, "saving state.json");
            log.LogWarning("{File} not saved at start: {Error}; no drop is taken until the state folder takes writes", DaemonState.FileName, e.Message);
        }
    }

    /// <summary>Records a shard whose score shard is durable and whose rows are in the heaps: one line in done.jsonl, flushed.</summary>
    public void RecordDone(DoneShard done)
    {
        State.AppendDone(paths.State, done);
        _doneKeys.Add(done.Key);
        _images += done.Rows;
        _quarantined += done.Quarantined;
        SinceCheckpoint++;
        Publish();
    }

    public void RecordQuarantined(QuarantinedDrop drop)
    {
        State.AppendQuarantined(paths.State, drop);
        Publish();
    }

    public void RecordIngested(string drop, string folder)
    {
        State.Ingested[drop] = folder;
        State.Save(paths.State);
    }

    /// <summary>Whether the last checkpoint failed, so the heaps on disk cover fewer shards than are done.</summary>
    public bool CheckpointOwed { get; private set; }

    /// <summary>Writes the heaps (covering every done shard) and points the state at them.</summary>
    public async Task CheckpointAsync()
    {
        var clock = Stopwatch.StartNew();
        int covers = State.Done.Count;
        string name = $"heaps-{covers:D9}.arrow";
        var previous = State.Heaps;
        try
        {
            await HeapCheckpoint.WriteAsync(Path.Combine(paths.Heaps, name), Selector, CancellationToken.None).ConfigureAwait(false);
            State.Heaps = new HeapsPointer(Path.Combine("heaps", name), covers);
            State.Save(paths.State);
        }
        catch (IOException e)
        {
            // Nothing is lost: the shards since the last good checkpoint are replayed from their score shards on restart.
            State.Heaps = previous;
            AtomicFile.TryDelete(AtomicFile.TempFor(Path.Combine(paths.Heaps, name)));
            CheckpointOwed = true;
            if (DaemonStatus.IsDiskFull(e))
            {
                // Degraded, not unhealthy: the daemon waits for room, and checkpoints as soon as it has some.
                status.WriteFailed(e, "the heaps checkpoint");
                log.LogWarning("heaps checkpoint over {Covers} shards not written: {Error}; tried again once the disk has room", covers, e.Message);
            }
            else
            {
                // /healthz says unhealthy until a later checkpoint succeeds (the next shard tries again).
                status.CheckpointFailed = e.Message;
                log.LogError("heaps checkpoint over {Covers} shards failed: {Error}; the next shard tries again", covers, e.Message);
            }
            return;
        }
        status.CheckpointFailed = null;
        CheckpointOwed = false;
        string? old = previous?.File;
        foreach (var f in Directory.EnumerateFiles(paths.Heaps, "heaps-*.arrow"))
            if (Path.GetFileName(f) != name) File.Delete(f);
        SinceCheckpoint = 0;
        RefreshFill();
        Publish();
        log.LogDebug("heaps checkpointed over {Covers} shards in {Seconds:F2} s (was {Old})", covers, clock.Elapsed.TotalSeconds, old);
    }

    /// <summary>Each class's kept count, exact: read when the heaps are compacted anyway (checkpoints and snapshots).</summary>
    public void RefreshFill()
    {
        var fill = new int[Selector.Classes];
        for (int c = 0; c < fill.Length; c++) fill[c] = Selector.Count(c);
        _fill = fill;
    }

    /// <summary>What the endpoints show, as of now.</summary>
    public void Publish() => status.Publish(new DaemonView(_images, _quarantined, State.Done.Count, State.QuarantinedDrops.Count, _fill, config.Scoring.K!.Value,
        State.Classes, State.Snapshot, State.Heaps, State.Restarts, State.Done.TakeLast(10).ToList(), State.QuarantinedDrops.TakeLast(10).ToList()));
}
