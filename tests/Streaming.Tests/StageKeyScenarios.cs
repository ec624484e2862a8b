using Streaming.Core.Options;
using Streaming.Core.Scoring;
using Streaming.Core.Compute;
using Streaming.Core.Selection;
using Streaming.Engine.Pipelines;

namespace Streaming.Tests;

/// <summary>
/// Pipelines whose stage keys <see cref="StageKeyTests"/> pins, as typed settings with made-up paths: the keys depend on
/// the settings, the sources' hashes, the kernels and the inputs' output hashes, which the tests give as fixed values,
/// so that nothing is read or run and the keys are the same on every machine and in every checkout.
/// </summary>
internal static class StageKeyScenarios
{
    /// <summary>A plain pipeline: a trained teacher, no optional stage.</summary>
    public static PipelineSpec Plain => new()
    {
        Name = "pinned", Seed = 3, IngestWorkers = 2, EvalBatch = 256, EvalWorkers = 2,
        Train = "/data/train-images-idx3-ubyte.gz", Test = "/data/t10k-images-idx3-ubyte.gz", LabeledPerClass = 5, DistractorCount = 10_000, DedupMaxHamming = 10,
        TeacherArch = "cnn-small", Teacher = new(256, 32, 0.1, "cosine"),
        Scoring = new ScoringSpec
        {
            TopP = 3, K = 10, P = 2, Balance = BalanceMode.Ranked, Batch = 64, DecodeWorkers = 2, Seed = 3,
            Compute = new ComputeSpec { Threads = 2, Device = "cpu", Isa = KernelIsa.Avx2, ChannelsLast = true },
        },
        StudentArch = "cnn-small:w2", Student = new(256, 32, 0.1, "pretrain"), Finetune = new(128, 32, 0.02, "finetune"),
        Baseline = new(128, 32, 0.1, "cosine"), Weak = new(128, 32, 0.1, "pretrain"),
    };

    /// <summary>Every optional key of the plain stages: a separate U, distractors, dedup, soft targets, the control, another balance.</summary>
    public static PipelineSpec Everything => Plain with
    {
        LabeledPerClass = 0, Unlabeled = "/data/yfcc", Distractors = "/data/photos", DistractorCount = 123, DedupAgainstTest = true, DedupMaxHamming = 7,
        SoftTargets = true, EqualBudgetControl = true, Scoring = Plain.Scoring with { Balance = BalanceMode.UnbalancedZipf },
    };

    /// <summary>The semi-weak setting with tags from the tag-noise model, on a deduplicated U, with the control.</summary>
    public static PipelineSpec SemiWeakNoise => Plain with { WeakTagsFrom = "noise", DedupAgainstTest = true, EqualBudgetControl = true };

    /// <summary>The semi-weak setting with U's own tags column.</summary>
    public static PipelineSpec SemiWeakColumn => Plain with { WeakTagsFrom = "column", SoftTargets = true };

    /// <summary>An imported teacher.</summary>
    public static PipelineSpec Imported => Plain with { TeacherArch = null, Teacher = null, TeacherModel = "/models/round1.safetensors" };

    /// <summary>An imported ONNX teacher (not evaluated, but keyed the same way).</summary>
    public static PipelineSpec ImportedOnnx => Plain with { TeacherArch = null, Teacher = null, TeacherModel = "/models/teacher.onnx", DedupAgainstTest = true };

    public static readonly IReadOnlyDictionary<string, PipelineSpec> All = new Dictionary<string, PipelineSpec>(StringComparer.Ordinal)
    {
        ["plain"] = Plain, ["everything"] = Everything, ["semi-weak-noise"] = SemiWeakNoise, ["semi-weak-column"] = SemiWeakColumn,
        ["imported"] = Imported, ["imported-onnx"] = ImportedOnnx,
    };

    /// <summary>The made-up hash of a source, a file or a stage's outputs: the SHA-256 of its description.</summary>
    public static string Fake(string what) => Streaming.Core.Hashing.Sha256(System.Text.Encoding.UTF8.GetBytes(what));

    /// <summary>The kernels of the recorded default run (avx2 on libtorch 2.10).</summary>
    public const string Kernels = "onednn avx2, aten avx2, mkl COMPATIBLE, libtorch 2.10.0.0 cpu, channels-last on, zoo 2";
}
