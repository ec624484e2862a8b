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
/// The daemon: watch the inbox, score each new shard through one long-lived <see cref="ScoreGraph"/>, fold its scores
/// into the persistent per-class heaps, record it as done, publish D-hat snapshots. The concerns live apart:
/// <see cref="DropIntake"/> (drops into shards), <see cref="HeapLedger"/> (state, heaps, recovery, checkpoints),
/// <see cref="SnapshotPublisher"/> and <see cref="MemoryGovernor"/>; this class wires them and runs the loop.
/// </summary>
/// <remarks>
/// Crash safety comes from the order of the steps for each shard: (1) the score shard is written (temporary name,
/// fsync, rename); (2) a line is appended to done.jsonl and flushed: the shard is now done, exactly once; (3) the drop
/// is moved out of the inbox. A restart after (1) scores the shard again (same bytes); after (2) it only moves the
/// drop. The endpoints read a published view (<see cref="DaemonView"/>) and never wait for the gate below.
/// </remarks>
public sealed class DaemonWorker : BackgroundService
{
    private readonly DaemonConfig _config;
    private readonly DaemonStatus _status;
    private readonly ILogger _log;
    private readonly SemaphoreSlim _gate = new(1, 1); // the heaps and the state: one user at a time
    private readonly DaemonPaths _paths;
    private readonly HeapLedger _ledger;
    private readonly SnapshotPublisher _snapshots;
    private readonly MemoryGovernor _memory;
    private readonly DropIntake _intake;
    private FileStream? _lock;

    public DaemonWorker(DaemonConfig config, DaemonStatus status, ILoggerFactory logs)
    {
        _config = config;
        _status = status;
        _log = logs.CreateLogger("streaming.daemon");
        _paths = new DaemonPaths(config.State);
        _ledger = new HeapLedger(config, _paths, status, _log);
        _snapshots = new SnapshotPublisher(config, _paths, _ledger, _log);
        _memory = new MemoryGovernor(config, status, _log);
        _intake = new DropIntake(config, _paths, status, _ledger, _memory, _gate, _log);
    }

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
        Directory.CreateDirectory(_paths.State);
        foreach (var d in _paths.All) Directory.CreateDirectory(d);
        try
        {
            _lock = new FileStream(Path.Combine(_paths.State, "lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            throw new StreamingException($"{_paths.State}: another daemon is using this state folder");
        }

        Streaming.Models.Compute.Kernels.Configure(_config.Isa, _config.Threads, _config.ChannelsLast, "compute.isa");
        // Held for the daemon's life: nothing else in this process changes libtorch's settings under its graph.
        using var compute = await Streaming.Models.Compute.Kernels.AcquireAsync(_config.Threads, _config.ChannelsLast, stop).ConfigureAwait(false);
        var device = TorchDevice.Resolve(_config.Device);
        string teacherPath = Teachers.Resolve(_config.Teacher);
        using var teacher = Teachers.Open(teacherPath, device, null, _config.Threads);
        int topP = Math.Min(_config.TopP, teacher.Spec.NumClasses);
        if (_config.P > topP) throw new StreamingException($"scoring.p ({_config.P}) exceeds the teacher's {teacher.Spec.NumClasses} classes");
        await _ledger.RecoverAsync(Hashing.Sha256File(teacherPath), teacher.Spec.Classes, Streaming.Models.Compute.Kernels.Current(_config.Threads), stop).ConfigureAwait(false);
        _snapshots.Recovered();

        var inbox = new Inbox(_config.Inbox, _config.Settle, _config.RetryTries, _config.RetryWindow);
        _status.StuckAfter = _config.StuckAfter;
        _status.MemoryLimitBytes = _config.MemoryLimitBytes;
        // On SIGTERM the graph stops at once: the batch in inference finishes (it cannot be interrupted) and the
        // shard being recorded is recorded; a shard cut off halfway is scored again on restart.
        using var graphStop = CancellationTokenSource.CreateLinkedTokenSource(stop);
        ScoreGraph? graph = null;
        Streaming.Cluster.RemoteScorer? remote = null;
        Func<string, string, WorkShard, Task> send;
        if (_config.Cluster is string cluster)
        {
            // A cluster client: the cluster's workers score each shard into this state folder, under the name given here.
            int threads = Streaming.Core.Options.Knobs.ResolveThreads(_config.Threads);
            string teacherSha = Hashing.Sha256File(teacherPath);
            string isa = Streaming.Models.Compute.Kernels.Current(threads).Isa;
            var spec = new Streaming.Cluster.JobSpec(
                Streaming.Cluster.RemoteScorer.KeyFor(_paths.State, teacherSha, topP, _config.Batch, threads, isa, _config.ChannelsLast),
                Path.GetFullPath(teacherPath), teacherSha, "/", "", Path.GetFullPath(_paths.State), topP, _config.Batch, threads, isa, _config.ChannelsLast,
                null, _config.P, _config.BalanceName, _config.Seed, _config.LeaseSeconds, []);
            remote = await Streaming.Cluster.RemoteScorer.StartAsync(Streaming.Cluster.ClusterConnection.Parse(cluster, _paths.State), spec,
                (c, rows) => new ValueTask(LockedAsync(async () =>
                {
                    await foreach (var batch in rows(CancellationToken.None).ConfigureAwait(false)) _ledger.Selector.Offer(batch);
                    await CommittedAsync(c).ConfigureAwait(false);
                })),
                (job, error) => new ValueTask(LockedAsync(() => FailedAsync(job, error).AsTask())), _log, stop).ConfigureAwait(false);
            send = (path, input, shard) => remote.SendShardAsync(path, input, shard, Path.GetRelativePath(_paths.State, ScoreFile(new ShardJob(path, input, shard))), stop);
        }
        else
        {
            var sink = new ShardSink(ScoreFile, _ledger.Selector, CommittedAsync, FailedAsync, _gate, NotWrittenAsync);
            var g = new ScoreGraph(teacher, topP, _config.Batch, _config.DecodeWorkers, sink, graphStop.Token);
            graph = g;
            _status.Stages = g.Stages;
            send = (path, input, shard) => g.SendShardAsync(path, input, shard);
        }
        await _intake.RescoreAsync(_ledger.Lost, send, stop).ConfigureAwait(false);
        _status.Ready = true;
        _log.LogInformation("watching {Inbox}; state in {State}; K={K} P={P} top_p={TopP} {Balance}; {Done} shards done before",
            _config.Inbox, _paths.State, _config.K, _config.P, topP, _config.BalanceName, _ledger.State.Done.Count);
        try
        {
            while (!stop.IsCancellationRequested)
            {
                _status.Beat();
                _status.SampleRate();
                // A failed graph cannot score anything: stop, saying why in one line (systemd restarts the daemon).
                if (graph is not null && graph.Completion.IsFaulted)
                    throw new StreamingException($"the scoring graph failed: {graph.Completion.Exception!.Flatten().InnerExceptions.FirstOrDefault(e => e is not OperationCanceledException)?.Message ?? "cancelled"}");
                if (_status.Degraded is not null)
                {
                    if (!DiskHasRoom())
                    {
                        await Task.Delay(_config.Poll, stop).ConfigureAwait(false);
                        continue;
                    }
                    // A checkpoint that met the full disk (at a restart, say) is written now, not at the next shard.
                    if (_ledger.CheckpointOwed) await LockedAsync(_ledger.CheckpointAsync).ConfigureAwait(false);
                }
                if (_intake.TakeRescores() is { Count: > 0 } again)
                    await _intake.RescoreAsync(again, send, stop).ConfigureAwait(false);
                bool sent = false;
                var drops = inbox.Scan();
                _status.Beat();
                // Everything in the inbox now, in flight or not; finished drops count it down until the next listing.
                Volatile.Write(ref _status.Pending, inbox.Present);
                foreach (var drop in drops)
                {
                    if (stop.IsCancellationRequested) break;
                    // The listing may be stale: a drop finished since then has left the inbox.
                    if (!DropIntake.Present(drop.Path) || _intake.Stuck(drop)) continue;
                    var work = _intake.Work(drop);
                    if (work.Sent) continue;
                    _status.Beat($"drop {drop.Name}");
                    try
                    {
                        sent |= await _intake.StartAsync(work, send, stop).ConfigureAwait(false);
                    }
                    catch (IOException e) when (DaemonStatus.IsDiskFull(e))
                    {
                        // Recording a quarantine hit a full disk: the drop is taken again once there is room.
                        _intake.Forget(drop);
                        _status.WriteFailed(e, "recording a quarantined drop");
                    }
                }
                if (!sent)
                {
                    bool idle = _intake.Idle && _status.InFlight == 0;
                    if (_snapshots.Due(idle) is string why)
                    {
                        try
                        {
                            await LockedAsync(() => _snapshots.PublishAsync(why)).ConfigureAwait(false);
                        }
                        catch (IOException e) when (DaemonStatus.IsDiskFull(e))
                        {
                            _status.WriteFailed(e, "writing a D-hat snapshot");
                            _log.LogWarning("snapshot not published: {Error}; it is tried again once the disk has room", e.Message);
                        }
                    }
                    _memory.ReturnMemory(idle, _ledger.State.Done.Count);
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
            if (remote is not null) await remote.DisposeAsync().ConfigureAwait(false);
            if (graph is not null)
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
            await LockedAsync(async () =>
            {
                if ((_ledger.State.Heaps?.Covers ?? 0) < _ledger.State.Done.Count) await _ledger.CheckpointAsync().ConfigureAwait(false);
            }).ConfigureAwait(false);
            _log.LogInformation("stopped: {Done} shards done, heaps checkpointed", _ledger.State.Done.Count);
            _lock?.Dispose();
        }
    }

    private async Task LockedAsync(Func<Task> action)
    {
        await _gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            await action().ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Where a shard's score shard goes: named by the input shard and its content, so two drops never share one.</summary>
    private string ScoreFile(ShardJob job)
    {
        var w = (WorkShard)job.Tag!;
        return Path.Combine(_paths.Scores, $"score-{Path.GetFileNameWithoutExtension(w.Path)}-{w.Key[..12]}.parquet");
    }

    /// <summary>The sink calls this, under the gate, once a shard's score shard is durable and its rows are in the heaps.</summary>
    private async ValueTask CommittedAsync(ShardCommit c)
    {
        var w = (WorkShard)c.Shard.Tag!;
        var done = new DoneShard(w.Key, w.Input, w.Drop.Drop.Name, Path.GetRelativePath(_paths.State, c.ScoreFile), c.Sha256, c.Rows,
            c.Quarantined, Math.Round(w.Clock.Elapsed.TotalSeconds, 3), DateTime.UtcNow, Source: Path.GetFullPath(w.Path));
        try
        {
            _ledger.RecordDone(done);
        }
        catch (IOException e)
        {
            // Not recorded, so not done: the drop stays in the inbox and its shard is scored again (the heaps count an id once).
            await NotWrittenAsync(c.Shard, e).ConfigureAwait(false);
            return;
        }
        _status.Scored(c.Rows);
        _log.LogInformation("shard {Input} scored: {Rows} images, {Quarantined} quarantined, {Seconds:F2} s, {Rate:F0} images/s",
            w.Input, c.Rows, c.Quarantined, done.Seconds, c.Rows / Math.Max(1e-6, done.Seconds));
        if (_ledger.SinceCheckpoint >= _config.CheckpointEveryShards) await _ledger.CheckpointAsync().ConfigureAwait(false);
        await _snapshots.ShardRecordedAsync().ConfigureAwait(false);
        _intake.ShardFinished(w, null);
    }

    /// <summary>
    /// Whether the state folder takes writes again after a full disk: a 1 MB probe written and removed. On success the
    /// daemon is no longer degraded, and the drops left in the inbox are taken again.
    /// </summary>
    private bool DiskHasRoom()
    {
        string probe = Path.Combine(_paths.Scores, ".space-probe");
        try
        {
            using (var f = new FileStream(probe, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                f.Write(new byte[1 << 20]);
                f.Flush(flushToDisk: true);
            }
            File.Delete(probe);
        }
        catch (IOException)
        {
            AtomicFile.TryDelete(probe);
            return false;
        }
        _log.LogInformation("the state folder takes writes again; taking drops");
        _status.Degraded = null;
        return true;
    }

    /// <summary>The sink calls this, under the gate, for a shard whose files could not be written: nothing of it was committed; its drop waits in the inbox.</summary>
    private ValueTask NotWrittenAsync(ShardJob job, IOException error)
    {
        var w = (WorkShard)job.Tag!;
        _status.WriteFailed(error, "writing a score shard");
        _log.LogWarning("shard {Input}: its score shard could not be written ({Error}); it stays in the inbox", w.Input, error.Message);
        _intake.ShardNotWritten(w);
        return ValueTask.CompletedTask;
    }

    /// <summary>The sink calls this, under the gate, for a shard that could not be read: its drop goes to quarantine once the rest of it is done.</summary>
    private ValueTask FailedAsync(ShardJob job, string error)
    {
        var w = (WorkShard)job.Tag!;
        _status.ShardsFailed++;
        _log.LogWarning("shard {Input} failed: {Error}", w.Input, error);
        _intake.ShardFinished(w, error);
        return ValueTask.CompletedTask;
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
