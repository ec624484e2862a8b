using Streaming.Core.Options;
using Streaming.Core.Selection;

namespace Streaming.Engine.Scoring;

/// <summary>
/// Settings of a scoring run. Each value is checked when it is set, against its shared setting (<see cref="Knobs"/>),
/// whose default it starts from; a bad one is an <see cref="OptionException"/> that front ends report in their words.
/// </summary>
public sealed record ScoreOptions
{
    private readonly int _topP = (int)Knobs.TopP.Default!, _batch = (int)Knobs.ScoringBatch.Default!, _workers = (int)Knobs.DecodeWorkers.Default!;
    private readonly int _p = (int)Knobs.P.Default!;
    private readonly int? _k, _threads;

    public required string Teacher { get; init; }
    public required string Data { get; init; }
    public required string Out { get; init; }
    /// <summary>P': classes kept per image in the score shards (at least the largest P anyone will try).</summary>
    public int TopP { get => _topP; init => _topP = Knobs.TopP.Check(value); }
    public int BatchSize { get => _batch; init => _batch = Knobs.ScoringBatch.Check(value); }
    public int DecodeWorkers { get => _workers; init => _workers = Knobs.DecodeWorkers.Check(value); }
    public string Device { get; init; } = (string)Knobs.Device.Default!;
    /// <summary>libtorch threads; null or 0: all cores.</summary>
    public int? Threads { get => _threads; init => _threads = value is int t ? Knobs.Threads.Check(t) : null; }
    /// <summary>When set, select D-hat (K a class) in the same pass.</summary>
    public int? K { get => _k; init => _k = value is int k ? Knobs.K.Check(k) : null; }
    public int P { get => _p; init => _p = Knobs.P.Check(value); }
    public BalanceMode Balance { get; init; } = BalanceModes.Parse((string)Knobs.Balance.Default!);
    public ulong Seed { get; init; }
    /// <summary>For a teacher that does not carry its own spec (a .pt state dict, an ONNX model without metadata).</summary>
    public Streaming.Models.IO.ModelSpec? TeacherSpec { get; init; }
    /// <summary>Only for tests and profiling: score the shards in this order instead of the manifest's.</summary>
    public IReadOnlyList<int>? ShardOrder { get; init; }
}
