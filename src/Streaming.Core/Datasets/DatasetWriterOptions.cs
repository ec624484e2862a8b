using Streaming.Core.Shards;

namespace Streaming.Core.Datasets;

/// <summary>How a dataset folder is laid out. Validated when set.</summary>
public sealed record DatasetWriterOptions
{
    public const int DefaultShardSize = 10_000;

    private readonly int _shardSize = DefaultShardSize;
    private readonly long _maxShardBytes = 1L << 30;
    private readonly int _rowGroupSize = 1024;

    /// <summary>Rows per shard (img2dataset's default, 10,000).</summary>
    public int ShardSize
    {
        get => _shardSize;
        init => _shardSize = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(ShardSize), "shard size must be at least 1");
    }

    /// <summary>A shard is closed early once its image bytes pass this, so large photos don't make huge files.</summary>
    public long MaxShardBytes
    {
        get => _maxShardBytes;
        init => _maxShardBytes = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(MaxShardBytes));
    }

    public int RowGroupSize
    {
        get => _rowGroupSize;
        init => _rowGroupSize = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(RowGroupSize));
    }

    public ShardCompression Compression { get; init; } = ShardCompression.Snappy;

    /// <summary>Shards with a <c>tags</c> column (weak labels); without it, a record that has tags is an error.</summary>
    public bool Tags { get; init; }

    /// <summary>Options for a dataset made from <paramref name="parent"/> (a split, a subset, a copy): its shard size, and its tags column if it has one.</summary>
    public static DatasetWriterOptions Like(DatasetManifest parent) => new()
    {
        ShardSize = parent.ShardSize > 0 ? parent.ShardSize : DefaultShardSize,
        Tags = parent.HasTags,
    };

    /// <summary>Replace an existing output folder instead of refusing.</summary>
    public bool Overwrite { get; init; }
}
