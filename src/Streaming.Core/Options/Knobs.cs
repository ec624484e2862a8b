using Streaming.Core.Compute;

namespace Streaming.Core.Options;

/// <summary>
/// Every setting that more than one front end takes, declared once with its default and its limits. Each options type
/// (<c>ScoreOptions</c>, <c>TrainOptions</c>, the daemon's and the pipeline's) checks its values against these, and
/// each front end (<c>score</c>, <c>select</c>, <c>eval</c>, <c>profile</c>, <c>daemon</c>, pipeline manifests) builds
/// its flags or keys from them. The README's table of settings lists them.
/// </summary>
public static class Knobs
{
    // Scoring: what the teacher keeps of each image, and how the graph runs.
    public static readonly Knob<int> TopP = new("scoring.top_p", "--top-p", OptionKind.Int, 10,
        "P': classes kept per image in the score shards (at least the largest P you will try)") { Min = 1, Max = 1000 };
    public static readonly Knob<int> ScoringBatch = new("scoring.batch", "--batch", OptionKind.Int, 256,
        "inference batch; scores are byte-identical for the same batch, threads and kernels") { Min = 1, Max = 65_536 };
    public static readonly Knob<int> DecodeWorkers = new("scoring.decode_workers", "--decode-workers", OptionKind.Int, 1,
        "parallel decode + preprocess workers") { Min = 1, Max = 256 };

    // Selection: D-hat from the scores.
    public static readonly Knob<int?> K = new("scoring.k", "-k", OptionKind.Int, null, "K: images kept a class") { Min = 1, Max = 100_000_000 };
    public static readonly Knob<int> P = new("scoring.p", "-p", OptionKind.Int, 10,
        "P: classes per image that count (at most P'); the paper's default is 10") { Min = 1, Max = 1000 };
    public static readonly Knob<string> Balance = new("scoring.balance", "--balance", OptionKind.Choice, "ranked",
        "ranked (the paper: the K best a class), unbalanced-zipf (the same total, Zipf class sizes) or random (K drawn among each class's candidates)")
        { Choices = ["ranked", "unbalanced-zipf", "random"] };
    public static readonly Knob<long> SelectionSeed = new("scoring.seed", "--seed", OptionKind.Long, 0L, "seed of random selection") { Min = 0 };

    // Compute: where and how libtorch runs.
    public static readonly Knob<int> Threads = new("threads", "--threads", OptionKind.Int, 0,
        "libtorch intra-op threads; 0: all cores. Results are bit-identical for the same threads and kernels") { Min = 0, Max = 4096, Aliases = ["scoring.threads"] };
    public static readonly Knob<string> Device = new("device", "--device", OptionKind.Text, "auto", "auto, cpu, cuda or cuda:N") { Aliases = ["scoring.device"] };
    public static readonly Knob<string> Isa = new("compute.isa", "--isa", OptionKind.Choice, "native",
        "kernel ISA: native (the CPU's best, fastest) or a level pinned so that results are bit-identical on any CPU that has it (docs/cpu-kernels.md)")
        { Choices = KernelIsas.Names };
    public static readonly Knob<bool> ChannelsLast = new("compute.channels_last", "--channels-last", OptionKind.Bool, true,
        "convolutions in channels-last (NHWC) memory: about 1.3x faster on CPUs; files stay NCHW");

    // Evaluation of every trained model.
    public static readonly Knob<int> EvalBatch = new("evaluation.batch", "--batch", OptionKind.Int, 256, "evaluation batch") { Min = 1, Max = 65_536 };
    public static readonly Knob<int> EvalWorkers = new("evaluation.decode_workers", "--decode-workers", OptionKind.Int, 1,
        "parallel decode workers of the evaluation") { Min = 1, Max = 256 };

    // Ingestion.
    public static readonly Knob<int> IngestWorkers = new("data.ingest_workers", "--workers", OptionKind.Int, 0,
        "parallel encode/verify/hash workers when ingesting; 0: all cores (the output does not depend on it)") { Min = 0, Max = 256 };

    /// <summary>Every setting above.</summary>
    public static IReadOnlyList<OptionSpec> All { get; } =
        [TopP, ScoringBatch, DecodeWorkers, K, P, Balance, SelectionSeed, Threads, Device, Isa, ChannelsLast, EvalBatch, EvalWorkers, IngestWorkers];

    /// <summary>A thread count as given (0 or null: all cores) as libtorch takes it.</summary>
    public static int ResolveThreads(int? threads) => threads is null or 0 ? Environment.ProcessorCount : Threads.Check(threads.Value);

    /// <summary>A worker count as given (0: all cores).</summary>
    public static int ResolveWorkers(int workers) => workers == 0 ? Environment.ProcessorCount : workers;
}
