using System.Diagnostics;

namespace Streaming.Engine.Scoring.Stages;

/// <summary>
/// One shard to score: where it is, the name its results go under, the caller's tag, a token that ends its reading
/// early, and its OpenTelemetry span (null when nobody listens), which ends when the sink has the shard.
/// </summary>
public sealed record ShardJob(string Path, string Input, object? Tag = null, CancellationToken StopReading = default)
{
    public Activity? Span { get; init; }
}
