namespace Streaming.Engine.Scoring.Stages;

/// <summary>
/// Where a scored shard goes. The graph calls it once per shard, one shard at a time, in the order shards were sent.
/// The one implementation is the session's sink, which hands each shard to its host (<see cref="IScoringHost{TTag}"/>).
/// </summary>
public interface IShardSink
{
    Task CommitAsync(ShardScores shard, CancellationToken cancellationToken);
}
