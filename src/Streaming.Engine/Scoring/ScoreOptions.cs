using Streaming.Core.Scoring;
using Streaming.Models.IO;

namespace Streaming.Engine.Scoring;

/// <summary>A <c>score</c> run: the teacher, the data, the output folder and the scoring's knobs (<see cref="ScoringSpec"/>).</summary>
public sealed record ScoreOptions
{
    public required string Teacher { get; init; }
    public required string Data { get; init; }
    public required string Out { get; init; }
    public ScoringSpec Scoring { get; init; } = new();
    /// <summary>For a teacher that does not carry its own spec (a .pt state dict, an ONNX model without metadata).</summary>
    public ModelSpec? TeacherSpec { get; init; }
    /// <summary>Only for tests and profiling: score the shards in this order instead of the manifest's.</summary>
    public IReadOnlyList<int>? ShardOrder { get; init; }
}
