using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Streaming.Core;
using Streaming.Core.Selection;
using Streaming.Engine.Scoring;

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
    private readonly DaemonPaths _paths;
    private readonly HeapLedger _ledger;
    private readonly SnapshotPublisher _snapshots;
    private readonly MemoryGovernor _memory;
    private readonly DropIntake _intake;
    private readonly DaemonShards _shards;
    private FileStream? _lock;

    public DaemonWorker(DaemonConfig config, DaemonStatus status, ILoggerFactory logs)
    {
        _config = config;
        _status = status;
        _log = logs.CreateLogger("streaming.daemon");
        _paths = new DaemonPaths(config.State);
        var gate = new SemaphoreSlim(1, 1); // the heaps and the state: one user at a time
        _ledger = new HeapLedger(config, _paths, status, _log);
        _snapshots = new SnapshotPublisher(config, _paths, _ledger, _log);
        _memory = new MemoryGovernor(config, status, _log);
        _intake = new DropIntake(config, _paths, status, _ledger, _memory, gate, _log);
        _shards = new DaemonShards(config, _paths, status, _ledger, _snapshots, _intake, gate, _log);
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
        TakeStateFolder();
        // The teacher and the kernels are held for the daemon's life: nothing else in this process changes them under its graph.
        using var setup = await ScoringSetup.OpenAsync(_config.Scoring, _config.Teacher, new ScoringSetupOptions { NoSelection = true }, stop).ConfigureAwait(false);
        await _ledger.RecoverAsync(Hashing.Sha256File(setup.TeacherFile), setup.Classes, setup.Compute, stop).ConfigureAwait(false);
        _snapshots.Recovered();
        _status.StuckAfter = _config.StuckAfter;
        _status.MemoryLimitBytes = _config.MemoryLimitBytes;
        // On SIGTERM the graph stops at once: the batch in inference finishes (it cannot be interrupted) and the
        // shard being recorded is recorded; a shard cut off halfway is scored again on restart.
        using var graphStop = CancellationTokenSource.CreateLinkedTokenSource(stop);
        await using var scoring = await DaemonScoring.StartAsync(_config, setup, _shards, _ledger, _paths.State, _log, graphStop.Token, stop).ConfigureAwait(false);
        _status.Stages = scoring.Stages;
        try
        {
            await _intake.RescoreAsync(_ledger.Lost, scoring.SendAsync, stop).ConfigureAwait(false);
            _status.Ready = true;
            var s = _config.Scoring;
            _log.LogInformation("watching {Inbox}; state in {State}; K={K} P={P} top_p={TopP} {Balance}; {Done} shards done before",
                _config.Inbox, _paths.State, s.K, s.P, setup.TopP, BalanceModes.Name(s.Balance), _ledger.State.Done.Count);
            await LoopAsync(new Inbox(_config.Inbox, _config.Settle, _config.RetryTries, _config.RetryWindow), scoring, stop).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
        finally
        {
            await ShutdownAsync(graphStop, scoring).ConfigureAwait(false);
        }
    }

    /// <summary>Creates the state folder's layout and locks it: one daemon a state folder.</summary>
    private void TakeStateFolder()
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
    }

    /// <summary>The inbox loop: list, send new drops' shards, publish snapshots when due, until stopped.</summary>
    private async Task LoopAsync(Inbox inbox, DaemonScoring scoring, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            _status.Beat();
            _status.SampleRate();
            // A failed graph cannot score anything: stop, saying why in one line (systemd restarts the daemon).
            if (scoring.Failure is string failure) throw new StreamingException($"the scoring graph failed: {failure}");
            if (_status.Degraded is not null)
            {
                if (!DiskHasRoom())
                {
                    await Task.Delay(_config.Poll, stop).ConfigureAwait(false);
                    continue;
                }
                // A checkpoint that met the full disk (at a restart, say) is written now, not at the next shard.
                if (_ledger.CheckpointOwed) await _shards.LockedAsync(_ledger.CheckpointAsync).ConfigureAwait(false);
            }
            if (_intake.TakeRescores() is { Count: > 0 } again)
                await _intake.RescoreAsync(again, scoring.SendAsync, stop).ConfigureAwait(false);
            if (!await SendDropsAsync(inbox, scoring, stop).ConfigureAwait(false)) await IdleAsync().ConfigureAwait(false);
            await Task.Delay(_config.Poll, stop).ConfigureAwait(false);
        }
    }

    /// <summary>Lists the inbox and starts every drop not yet taken; whether any shard was sent.</summary>
    private async Task<bool> SendDropsAsync(Inbox inbox, DaemonScoring scoring, CancellationToken stop)
    {
        bool sent = false;
        var drops = inbox.Scan();
        _status.Beat();
        // Everything in the inbox now, in flight or not; finished drops count it down until the next listing.
        _status.Listed(inbox.Present);
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
                sent |= await _intake.StartAsync(work, scoring.SendAsync, stop).ConfigureAwait(false);
            }
            catch (IOException e) when (DaemonStatus.IsDiskFull(e))
            {
                // Recording a quarantine hit a full disk: the drop is taken again once there is room.
                _intake.Forget(drop);
                _status.WriteFailed(e, "recording a quarantined drop");
            }
        }
        return sent;
    }

    /// <summary>Nothing new was sent this turn: a snapshot if one is due, and memory back to the system when idle.</summary>
    private async Task IdleAsync()
    {
        bool idle = _intake.Idle && _status.InFlight == 0;
        if (_snapshots.Due(idle) is string why)
        {
            try
            {
                await _shards.LockedAsync(() => _snapshots.PublishAsync(why)).ConfigureAwait(false);
            }
            catch (IOException e) when (DaemonStatus.IsDiskFull(e))
            {
                _status.WriteFailed(e, "writing a D-hat snapshot");
                _log.LogWarning("snapshot not published: {Error}; it is tried again once the disk has room", e.Message);
            }
        }
        _memory.ReturnMemory(idle, _ledger.State.Done.Count);
    }

    /// <summary>
    /// Shutdown: no new work; the batch in inference finishes, the shard being collected is recorded or not at all, then
    /// the heaps are checkpointed. A shard cut off halfway is scored again on restart.
    /// </summary>
    private async Task ShutdownAsync(CancellationTokenSource graphStop, DaemonScoring scoring)
    {
        _status.Ready = false;
        await graphStop.CancelAsync().ConfigureAwait(false);
        await scoring.StopAsync(_log).ConfigureAwait(false);
        await _shards.LockedAsync(async () =>
        {
            if ((_ledger.State.Heaps?.Covers ?? 0) < _ledger.State.Done.Count) await _ledger.CheckpointAsync().ConfigureAwait(false);
        }).ConfigureAwait(false);
        _log.LogInformation("stopped: {Done} shards done, heaps checkpointed", _ledger.State.Done.Count);
        _lock?.Dispose();
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
}

internal static partial class Posix
{
    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "rename", StringMarshalling = System.Runtime.InteropServices.StringMarshalling.Utf8, SetLastError = true)]
    private static partial int RenameNative(string from, string to);

    /// <summary>errno EXDEV: a rename across file systems.</summary>
    internal const int CrossDevice = 18;

    /// <summary>rename(2): the entry itself moves (a symbolic link as the link); an error is an <see cref="IOException"/> naming both paths.</summary>
    internal static void Rename(string from, string to)
    {
        if (RenameNative(from, to) == 0) return;
        int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
        throw new IOException($"cannot move {from} to {to}: {System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno)}", errno);
    }

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
