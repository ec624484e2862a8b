using Streaming.Core.Options;
using Streaming.Core.Selection;

namespace Streaming.Core.Scoring;

/// <summary>
/// The knobs of a scoring run, typed, with their defaults and limits from <see cref="Knobs"/>: what the teacher keeps
/// of each image (P'), how the graph runs (batch, decode workers, compute) and, with K, the selection made in the same
/// pass. Every front end binds into it: the command line, a pipeline manifest and the daemon's config
/// (<see cref="From"/>), and a cluster job. Each value is checked when set; the rules between values once, in
/// <see cref="Validated"/>.
/// </summary>
public sealed record ScoringSpec
{
    private readonly int _topP = Knobs.TopP.Default, _batch = Knobs.ScoringBatch.Default, _workers = Knobs.DecodeWorkers.Default, _p = Knobs.P.Default;
    private readonly int? _k = Knobs.K.Default;
    private readonly long _seed = Knobs.SelectionSeed.Default;

    /// <summary>P': classes kept per image in the score shards (at least the largest P anyone will try).</summary>
    public int TopP { get => _topP; init => _topP = Knobs.TopP.Check(value); }

    /// <summary>The inference batch; score shards are byte-identical for the same batch, threads and kernels.</summary>
    public int Batch { get => _batch; init => _batch = Knobs.ScoringBatch.Check(value); }

    public int DecodeWorkers { get => _workers; init => _workers = Knobs.DecodeWorkers.Check(value); }

    /// <summary>K: images kept a class. Null: score only, select nothing.</summary>
    public int? K { get => _k; init => _k = value is int k ? Knobs.K.Check(k) : null; }

    /// <summary>P: classes per image that count for selection (at most P').</summary>
    public int P { get => _p; init => _p = Knobs.P.Check(value); }

    public BalanceMode Balance { get; init; } = BalanceModes.Parse(Knobs.Balance.Default);

    /// <summary>Seed of random selection.</summary>
    public ulong Seed { get => (ulong)_seed; init => _seed = Knobs.SelectionSeed.Check((long)value); }

    public ComputeSpec Compute { get; init; } = new();

    /// <summary>This spec, once its values agree with each other: when it selects, P is at most P' (<see cref="Selection.TopP.Check"/>).</summary>
    /// <exception cref="OptionException">They do not; front ends report it in their own words.</exception>
    public ScoringSpec Validated()
    {
        if (K is not null) Selection.TopP.Check(P, TopP);
        return this;
    }

    /// <summary>Empty heaps for this spec's selection over <paramref name="classes"/> classes.</summary>
    /// <exception cref="InvalidOperationException">The spec selects nothing (no K).</exception>
    public Selector NewSelector(int classes) =>
        new(classes, K ?? throw new InvalidOperationException("this scoring selects nothing (no K)"), P, Balance, Seed);

    /// <summary>
    /// Binds the scoring and compute keys of a validated YAML file (a daemon config, a pipeline manifest), then
    /// <see cref="Validated"/>. A key the file's schema does not have takes its default (a pipeline's selection seed is its
    /// top-level <c>seed</c>).
    /// </summary>
    public static ScoringSpec From(IReadOnlyDictionary<string, object> values)
    {
        T Get<T>(Knob<T> knob) => values.TryGetValue(knob.Key, out var v) ? (T)v : knob.Default;
        return new ScoringSpec
        {
            TopP = Get(Knobs.TopP),
            Batch = Get(Knobs.ScoringBatch),
            DecodeWorkers = Get(Knobs.DecodeWorkers),
            K = values.TryGetValue(Knobs.K.Key, out var k) ? (int)k : null,
            P = Get(Knobs.P),
            Balance = BalanceModes.Parse(Get(Knobs.Balance)),
            Seed = (ulong)Get(Knobs.SelectionSeed),
            Compute = ComputeSpec.From(values),
        }.Validated();
    }
}
