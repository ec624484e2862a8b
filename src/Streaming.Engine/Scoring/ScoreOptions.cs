using Streaming.Core.Selection;

namespace Streaming.Engine.Scoring;

/// <summary>Settings of a scoring run. Validated by the engine before it starts.</summary>
public sealed record ScoreOptions
{
    public required string Teacher { get; init; }
    public required string Data { get; init; }
    public required string Out { get; init; }
    /// <summary>P': classes kept per image in the score shards (at least the largest P anyone will try). Default 10.</summary>
    public int TopP { get; init; } = 10;
    public int BatchSize { get; init; } = 256;
    public int DecodeWorkers { get; init; } = 1;
    public string Device { get; init; } = "auto";
    public int? Threads { get; init; }
    /// <summary>When set, select D-hat (K a class) in the same pass.</summary>
    public int? K { get; init; }
    public int P { get; init; } = 10;
    public BalanceMode Balance { get; init; } = BalanceMode.Ranked;
    public ulong Seed { get; init; }
    /// <summary>For a teacher that does not carry its own spec (a .pt state dict, an ONNX model without metadata).</summary>
    public Streaming.Models.IO.ModelSpec? TeacherSpec { get; init; }
    /// <summary>Only for tests and profiling: score the shards in this order instead of the manifest's.</summary>
    public IReadOnlyList<int>? ShardOrder { get; init; }
}
