using System.Buffers.Binary;
using Parquet.Meta;

namespace Streaming.Core.Shards;

/// <summary>
/// The fast path behind <see cref="ParquetFileReader"/>: a required byte-array column chunk read whole with one
/// positioned read, its pages parsed here (<see cref="ParquetPages"/>) and each PLAIN value handed on as a span, with no
/// object a value (Parquet.Net's reader allocates some 3 KB a row for image shards' columns). Shards as this engine
/// writes them (no dictionary, Snappy, Zstd or no compression) are read here; any other chunk (another writer's
/// dictionary, nullable columns, another codec or encoding) is declined, for Parquet.Net to read.
/// </summary>
internal sealed class PageColumnReader(FileStream stream, FileMetaData? metadata, ReadBuffers buffers) : IColumnReader
{
    public async ValueTask<bool> TryReadStringsAsync(ParquetGroupReader group, ParquetColumn column, string[] into, int rows, CancellationToken cancellationToken)
    {
        if (Chunk(group.Index, column, rows) is not { } chunk) return false;
        int row = 0;
        return await ReadChunkAsync(chunk, rows, cancellationToken, value => into[row++] = System.Text.Encoding.UTF8.GetString(value)).ConfigureAwait(false);
    }

    public async ValueTask<bool> TryReadBytesAsync(ParquetGroupReader group, ParquetColumn column, int rows, ByteValueAction each, CancellationToken cancellationToken) =>
        Chunk(group.Index, column, rows) is { } chunk && await ReadChunkAsync(chunk, rows, cancellationToken, each).ConfigureAwait(false);

    /// <summary>The column chunk of a top-level required column, when it is one read here and holds <paramref name="rows"/> values.</summary>
    private ColumnMetaData? Chunk(int group, ParquetColumn column, int rows)
    {
        if (column.IsNullable || column.Path.Count != 1 || metadata is null || group >= metadata.RowGroups.Count) return null;
        var rg = metadata.RowGroups[group];
        if (rg.NumRows != rows) return null;
        var chunk = rg.Columns.FirstOrDefault(c => c.MetaData?.PathInSchema is [var only] && only == column.Name)?.MetaData;
        return chunk is not null && Readable(chunk) && chunk.NumValues == rows ? chunk : null;
    }

    private static bool Readable(ColumnMetaData c) =>
        c.Type == Parquet.Meta.Type.BYTE_ARRAY && c.DictionaryPageOffset is null or 0
        && c.Codec is CompressionCodec.UNCOMPRESSED or CompressionCodec.SNAPPY or CompressionCodec.ZSTD
        && c.Encodings.All(e => e is Encoding.PLAIN or Encoding.RLE or Encoding.BIT_PACKED);

    /// <summary>Reads one column chunk's pages and hands each PLAIN value on; false when a page is not one read here.</summary>
    private async Task<bool> ReadChunkAsync(ColumnMetaData column, int values, CancellationToken cancellationToken, ByteValueAction each)
    {
        long size = column.TotalCompressedSize;
        if (size <= 0 || size > Array.MaxLength) return false;
        if (column.DataPageOffset < 0 || column.DataPageOffset + size > stream.Length)
            throw new InvalidDataException($"a column chunk declares {size:N0} bytes at {column.DataPageOffset:N0}, past the end of the file ({stream.Length:N0} bytes)");
        if (buffers.Chunk.Length < size) buffers.Chunk = new byte[size];
        var chunk = buffers.Chunk;
        int read = await RandomAccess.ReadAsync(stream.SafeFileHandle, chunk.AsMemory(0, (int)size), column.DataPageOffset, cancellationToken).ConfigureAwait(false);
        if (read != size) throw new InvalidDataException($"a column chunk ends early ({read:N0} of {size:N0} bytes)");
        int at = 0, seen = 0;
        while (seen < values)
        {
            if (at >= size) throw new InvalidDataException($"a column chunk ends after {seen:N0} of {values:N0} values");
            var h = ParquetPages.ReadHeader(chunk.AsSpan(at, (int)size - at));
            if (!h.Supported) return false;
            int body = at + h.HeaderLength;
            if (h.CompressedSize > size - body) throw new InvalidDataException("a page runs past its column chunk");
            int levels = h.Type == ParquetPages.DataPageV2 ? h.DefinitionLevelsLength + h.RepetitionLevelsLength : 0;
            if (levels != 0) return false; // a required column has none
            var payload = chunk.AsSpan(body, h.CompressedSize);
            ReadOnlySpan<byte> page;
            bool compressed = h.Type == ParquetPages.DataPage || h.IsCompressed;
            if (!compressed || column.Codec == CompressionCodec.UNCOMPRESSED)
            {
                page = payload;
            }
            else
            {
                if (buffers.Page.Length < h.UncompressedSize) buffers.Page = new byte[h.UncompressedSize];
                var output = buffers.Page.AsSpan(0, h.UncompressedSize);
                if (column.Codec == CompressionCodec.SNAPPY) ParquetPages.Unsnappy(payload, output);
                else if ((buffers.Zstd ??= new ZstdSharp.Decompressor()).Unwrap(payload, output) != h.UncompressedSize) throw new InvalidDataException("zstd: a page decompresses to another size");
                page = output;
            }
            int p = 0;
            for (int v = 0; v < h.NumValues; v++)
            {
                if (p + 4 > page.Length) throw new InvalidDataException("a page ends inside a value's length");
                int length = BinaryPrimitives.ReadInt32LittleEndian(page[p..]);
                p += 4;
                if (length < 0 || length > page.Length - p) throw new InvalidDataException($"a value of {length:N0} bytes runs past its page");
                if (seen + v >= values) throw new InvalidDataException("a column chunk holds more values than its row group");
                each(page.Slice(p, length));
                p += length;
            }
            seen += h.NumValues;
            at = body + h.CompressedSize;
        }
        return true;
    }
}
