namespace Streaming.Engine.Scoring.Stages;

/// <summary>What a committed shard left on disk: its score shard, rows, quarantined images and the score shard's SHA-256.</summary>
public sealed record ShardCommit(ShardJob Shard, string ScoreFile, long Rows, long Quarantined, string Sha256);
