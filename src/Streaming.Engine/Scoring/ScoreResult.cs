using Streaming.Core.Selection;
using Streaming.Core.Dataflow;

namespace Streaming.Engine.Scoring;

public sealed record ScoreResult(long ImagesScored, long Quarantined, int ShardsDone, int ShardsSkipped, IReadOnlyList<string> FailedShards,
    TimeSpan Elapsed, IReadOnlyList<StageSnapshot> Stages, string Bottleneck, SelectionManifest? Selection)
{
    public double ImagesPerSecond => Elapsed.TotalSeconds > 0 ? ImagesScored / Elapsed.TotalSeconds : 0;
}
