using Streaming.Core.Compute;

namespace Streaming.Models.Training;

/// <summary>Everything that defines a training run. The resolved copy is saved with every checkpoint and the final model.</summary>
public sealed record TrainOptions
{
    public required string Data { get; init; }
    public required string Arch { get; init; }
    public required string Out { get; init; }

    /// <summary>Budget in images processed (the paper's "#iter"); exclusive with <see cref="Epochs"/>.</summary>
    public long? Images { get; init; }
    public double? Epochs { get; init; }

    public int BatchSize { get; init; } = DefaultBatch;

    /// <summary>The training batch when none is given.</summary>
    public const int DefaultBatch = 128;
    /// <summary>The rate at batch 256; the peak rate is BaseLr x BatchSize / 256 (linear scaling). Null: the recipe's (<see cref="TrainRecipe"/>).</summary>
    public double? BaseLr { get; init; }
    /// <summary>Null: the recipe's (<see cref="TrainRecipe"/>): cosine, or the fine-tuning schedule when starting from --init.</summary>
    public ScheduleKind? Schedule { get; init; }
    /// <summary>Linear warm-up, in images. Null: 3% of the budget.</summary>
    public long? WarmupImages { get; init; }
    public double Momentum { get; init; } = 0.9;
    /// <summary>Null: the recipe's (<see cref="TrainRecipe"/>).</summary>
    public double? WeightDecay { get; init; }

    /// <summary>Start from these weights (fine-tuning); the classifier is replaced when the class count differs.</summary>
    public string? Init { get; init; }
    /// <summary>
    /// Train the last linear layer alone (transfer's fc-only protocol, §5.2): every other weight keeps its value and
    /// every BatchNorm its statistics. Needs <see cref="Init"/>.
    /// </summary>
    public bool FreezeBackbone { get; init; }
    /// <summary>Set by <see cref="Trainer.Resolve"/>: which settings came from <see cref="TrainRecipe"/> (for the log).</summary>
    [System.Text.Json.Serialization.JsonIgnore] public string? RecipeNote { get; init; }
    public string Device { get; init; } = Streaming.Core.Options.Knobs.Device.Default;
    public ulong Seed { get; init; }
    /// <summary>Input size; null: the dataset's own (square) for small models, 224 for the ImageNet models.</summary>
    public int? ImageSize { get; init; }
    /// <summary>Random crops and flips; null: the recipe's (on up to 10,000 labeled images, off above).</summary>
    public bool? Augment { get; init; }
    /// <summary>
    /// Soft targets: a scoring folder (the output of <c>score</c>) whose top-P' probabilities, renormalized, are each
    /// image's target instead of its label. Null: hard labels (the paper).
    /// </summary>
    public string? SoftTargets { get; init; }

    /// <summary>Write a checkpoint every this many images (and at the end). Null: about every epoch, at least 10,000 images apart.</summary>
    public long? CheckpointEvery { get; init; }
    public string? EvalData { get; init; }
    /// <summary>Evaluate on <see cref="EvalData"/> every this many images (and at the end). Null: about every epoch.</summary>
    public long? EvalEvery { get; init; }
    public bool Resume { get; init; }
    public bool Overwrite { get; init; }

    /// <summary>libtorch intra-op threads. Null: the machine's cores.</summary>
    public int? Threads { get; init; }
    public int DecodeWorkers { get; init; } = Streaming.Core.Options.Knobs.DecodeWorkers.Default;
    /// <summary>Write a training metrics line every this many images. Null: 200 lines over the run (at least one a batch).</summary>
    public long? LogEveryImages { get; init; }
    public int ShuffleBuffer { get; init; } = 10_000;

    /// <summary>The kernels the run used (filled in by the trainer; not part of what makes a run the same run).</summary>
    public Streaming.Core.Compute.ComputeEnvironment? Compute { get; init; }

    /// <summary>The processes that trained together (null: this process alone, and then config.json does not say it).</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public DistributedInfo? Distributed { get; init; }

    /// <summary>The engine that ran it (commit, dirty), for config.json.</summary>
    public Streaming.Core.EngineBuild? Engine { get; init; }
}
