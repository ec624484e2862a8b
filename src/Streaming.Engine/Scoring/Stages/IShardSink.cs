namespace Streaming.Engine.Scoring.Stages;

/// <summary>
/// Where a scored shard goes. The graph calls it once per shard, one shard at a time, in the order shards were sent.
/// <see cref="ShardSink"/> is the one local sink (score, the daemon, profile); the cluster's sink commits to the
/// cluster around it.
/// </summary>
public interface IShardSink
{
    Task CommitAsync(ShardScores shard, CancellationToken cancellationToken);
}
