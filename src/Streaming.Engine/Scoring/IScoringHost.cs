using Streaming.Engine.Scoring.Stages;

namespace Streaming.Engine.Scoring;

/// <summary>
/// What a host of a <see cref="ScoringSession{TTag}"/> plugs in: where a shard's score shard goes, and what happens once
/// it is committed, refused, unreadable or unwritable. Everything else (kernels, teacher, P', selector, graph, sink,
/// closing step) is the session's. <typeparamref name="TTag"/> is what the host sends with each shard and gets back:
/// <c>score</c> a shard's index, the daemon its drop's shard, a cluster worker its lease.
/// </summary>
public interface IScoringHost<in TTag>
{
    /// <summary>Where the score shard of <paramref name="shard"/> goes.</summary>
    string ScoreFile(ShardJob shard, TTag tag);

    /// <summary>
    /// Asked once a shard's score shard is durable and before its rows reach the selector: false keeps them out (a cluster
    /// worker whose commit was refused, its lease having moved on).
    /// </summary>
    ValueTask<bool> AdmitAsync(ShardCommit commit, TTag tag) => ValueTask.FromResult(true);

    /// <summary>A shard is durable and its rows are in the selector.</summary>
    ValueTask CommittedAsync(ShardCommit commit, TTag tag) => ValueTask.CompletedTask;

    /// <summary>A shard could not be read (corrupt, missing, stopped): nothing of it was written.</summary>
    ValueTask FailedAsync(ShardJob shard, TTag tag, string error) => ValueTask.CompletedTask;

    /// <summary>Whether this host takes write errors (<see cref="WriteFailedAsync"/>); false: a write error stops the graph (a batch command).</summary>
    bool TakesWriteErrors => false;

    /// <summary>A shard whose files could not be written (a full disk): nothing of it was committed, and it may be sent again.</summary>
    ValueTask WriteFailedAsync(ShardJob shard, TTag tag, IOException error) => ValueTask.CompletedTask;

    /// <summary>When given, admission, the selector and the reports above run under it (the daemon's state has other users).</summary>
    SemaphoreSlim? Gate => null;
}
