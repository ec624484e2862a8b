using Parquet;

namespace Streaming.Core.Shards;

/// <summary>Parquet compression codecs that DuckDB, pyarrow and Spark all read.</summary>
public enum ShardCompression
{
    /// <summary>Fast; the default (encoded images barely compress, so a fast codec wins).</summary>
    Snappy,
    /// <summary>Smaller files for compressible columns, slower to write.</summary>
    Zstd,
    /// <summary>No compression.</summary>
    None,
}

internal static class ShardCompressionExtensions
{
    public static CompressionMethod ToParquet(this ShardCompression c) => c switch
    {
        ShardCompression.Snappy => CompressionMethod.Snappy,
        ShardCompression.Zstd => CompressionMethod.Zstd,
        ShardCompression.None => CompressionMethod.None,
        _ => throw new ArgumentOutOfRangeException(nameof(c)),
    };
}
