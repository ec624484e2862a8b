using Microsoft.Extensions.Logging;
using Streaming.Core;
using Streaming.Engine.Scoring;
using Streaming.Engine.Scoring.Stages;

namespace Streaming.Daemon;

/// <summary>
/// The daemon as a host of the scoring session: a shard's score shard goes to the state folder, named by its input and
/// content; a committed shard is recorded in the ledger (done.jsonl), which makes it done exactly once; a shard that
/// could not be read sends its drop to quarantine; one that could not be written (a full disk) leaves its drop in the
/// inbox. All of it under the daemon's gate, which the heaps and the state share with the inbox loop.
/// </summary>
internal sealed class DaemonShards(DaemonConfig config, DaemonPaths paths, DaemonStatus status, HeapLedger ledger, SnapshotPublisher snapshots,
    DropIntake intake, SemaphoreSlim gate, ILogger log) : IScoringHost<WorkShard>
{
    public SemaphoreSlim? Gate => gate;

    public bool TakesWriteErrors => true;

    /// <summary>Where a shard's score shard goes: named by the input shard and its content, so two drops never share one.</summary>
    public string ScoreFile(ShardJob shard, WorkShard w) =>
        Path.Combine(paths.Scores, $"score-{Path.GetFileNameWithoutExtension(w.Path)}-{w.Key[..12]}.parquet");

    /// <summary>Under the gate, once a shard's score shard is durable and its rows are in the heaps.</summary>
    public async ValueTask CommittedAsync(ShardCommit c, WorkShard w)
    {
        var done = new DoneShard(w.Key, w.Input, w.Drop.Drop.Name, Path.GetRelativePath(paths.State, c.ScoreFile), c.Sha256, c.Rows,
            c.Quarantined, Math.Round(w.Clock.Elapsed.TotalSeconds, 3), DateTime.UtcNow, Source: Path.GetFullPath(w.Path));
        try
        {
            ledger.RecordDone(done);
        }
        catch (IOException e)
        {
            // Not recorded, so not done: the drop stays in the inbox and its shard is scored again (the heaps count an id once).
            await WriteFailedAsync(c.Shard, w, e).ConfigureAwait(false);
            return;
        }
        status.Scored(c.Rows);
        log.LogInformation("shard {Input} scored: {Rows} images, {Quarantined} quarantined, {Seconds:F2} s, {Rate:F0} images/s",
            w.Input, c.Rows, c.Quarantined, done.Seconds, c.Rows / Math.Max(1e-6, done.Seconds));
        if (ledger.SinceCheckpoint >= config.CheckpointEveryShards) await ledger.CheckpointAsync().ConfigureAwait(false);
        await snapshots.ShardRecordedAsync().ConfigureAwait(false);
        intake.ShardFinished(w, null);
    }

    /// <summary>Under the gate, for a shard whose files could not be written: nothing of it was committed; its drop waits in the inbox.</summary>
    public ValueTask WriteFailedAsync(ShardJob shard, WorkShard w, IOException error)
    {
        status.WriteFailed(error, "writing a score shard");
        log.LogWarning("shard {Input}: its score shard could not be written ({Error}); it stays in the inbox", w.Input, error.Message);
        intake.ShardNotWritten(w);
        return ValueTask.CompletedTask;
    }

    /// <summary>Under the gate, for a shard that could not be read: its drop goes to quarantine once the rest of it is done.</summary>
    public ValueTask FailedAsync(ShardJob shard, WorkShard w, string error)
    {
        status.ShardFailed();
        log.LogWarning("shard {Input} failed: {Error}", w.Input, error);
        intake.ShardFinished(w, error);
        return ValueTask.CompletedTask;
    }

    /// <summary>Runs <paramref name="action"/> under the gate.</summary>
    public async Task LockedAsync(Func<Task> action)
    {
        await gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            await action().ConfigureAwait(false);
        }
        finally
        {
            gate.Release();
        }
    }
}
