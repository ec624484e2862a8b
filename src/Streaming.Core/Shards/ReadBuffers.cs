namespace Streaming.Core.Shards;

/// <summary>
/// What the readers behind <see cref="ParquetFileReader"/> read through: the page reader's column chunk, decompressed
/// page and Zstd decompressor, and Parquet.Net's rows of a byte-array column. Kept by a reader of many files (scoring's
/// read stage, through <see cref="ShardColumnBuffers"/>), so a file costs no buffer once the largest chunk was seen.
/// </summary>
internal sealed class ReadBuffers : IDisposable
{
    public byte[] Chunk = [], Page = [];
    public byte[][] Rows = [];
    public ZstdSharp.Decompressor? Zstd;

    public void Dispose()
    {
        Zstd?.Dispose();
        Zstd = null;
    }
}
