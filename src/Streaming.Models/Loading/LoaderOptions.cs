using Streaming.Core.Decode;
using Streaming.Core.Loading;

namespace Streaming.Models.Loading;

/// <summary>How the training loader reads, decodes and batches. Validated when set.</summary>
public sealed record LoaderOptions
{
    private readonly int _batchSize = 128;
    private readonly int _workers = 1;
    private readonly int _prefetch = 4;
    private readonly int _shuffleBuffer = 10_000;

    public required PreprocessOptions Preprocess { get; init; }
    public AugmentationOptions Augment { get; init; } = AugmentationOptions.None;
    /// <summary>Soft targets: each batch then also carries the teacher's distribution of each image (<see cref="Batch.Targets"/>).</summary>
    public SoftTargets? SoftTargets { get; init; }
    public ulong Seed { get; init; }
    public bool Shuffle { get; init; } = true;
    /// <summary>Unlabeled images too, with label -1 (features, dedup): never for training.</summary>
    public bool IncludeUnlabeled { get; init; }
    /// <summary>Drop the last incomplete batch of an epoch (training), or keep it (evaluation).</summary>
    public bool DropLast { get; init; } = true;

    /// <summary>
    /// Of every batch of <see cref="BatchSize"/> rows, the rows this process takes (one rank of a data-parallel run): the
    /// batches are formed from the epoch's order as in one process, then only this slice is decoded and handed on.
    /// Null: the whole batch.
    /// </summary>
    public (int Start, int Count)? Share { get; init; }

    public int BatchSize
    {
        get => _batchSize;
        init => _batchSize = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(BatchSize), "batch size must be at least 1");
    }

    /// <summary>Parallel decode + augment workers.</summary>
    public int Workers
    {
        get => _workers;
        init => _workers = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(Workers), "decode workers must be at least 1");
    }

    /// <summary>Batches prepared ahead of the model.</summary>
    public int Prefetch
    {
        get => _prefetch;
        init => _prefetch = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(Prefetch));
    }

    public int ShuffleBuffer
    {
        get => _shuffleBuffer;
        init => _shuffleBuffer = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(ShuffleBuffer));
    }
}
