using System.Buffers.Binary;
using Parquet;
using Parquet.Meta;
using Parquet.Schema;

namespace Streaming.Core.Shards;

/// <summary>
/// The two columns of an image shard that scoring reads, id and image, one row group at a time into buffers it
/// reuses: the ids as strings, the images end to end in one byte buffer. The other columns are never read.
/// </summary>
/// <remarks>
/// Shards as this engine writes them (required PLAIN byte arrays, no dictionary, Snappy, Zstd or no compression) are
/// read here, page by page (<see cref="ParquetPages"/>), with no object a row but the id's string: Parquet.Net's own
/// reader allocates some 3 KB a row for these columns. Any other column chunk (another writer's dictionary, nullable
/// columns, another codec) is read by Parquet.Net, with the same result.
/// </remarks>
public sealed class ShardImageColumns : IAsyncDisposable
{
    private readonly FileStream _stream;
    private readonly ParquetReader _reader;
    private readonly DataField _id, _image;
    private readonly ShardColumnBuffers _b;
    private readonly bool _ownsBuffers;

    /// <summary>Row groups read by the fast path, and by Parquet.Net (for tests and the curious).</summary>
    public int FastRowGroups { get; private set; }
    public int FallbackRowGroups { get; private set; }

    private ShardImageColumns(string path, FileStream stream, ParquetReader reader, DataField id, DataField image, ShardColumnBuffers? buffers)
    {
        Path = path;
        _stream = stream;
        _reader = reader;
        _id = id;
        _image = image;
        _ownsBuffers = buffers is null;
        _b = buffers ?? new ShardColumnBuffers();
    }

    public string Path { get; }
    public int RowGroupCount => _reader.RowGroupCount;

    /// <summary>The ids of the last row group read (its first <see cref="Count"/> entries).</summary>
    public string[] Ids => _b.Ids;

    /// <summary>The images of the last row group read, end to end; image i ends at <see cref="Ends"/>[i].</summary>
    public byte[] Images => _b.Images;

    public int[] Ends => _b.Ends;

    /// <summary>Rows in the last row group read.</summary>
    public int Count { get; private set; }

    public ReadOnlySpan<byte> Image(int i) => Images.AsSpan(i == 0 ? 0 : Ends[i - 1], Ends[i] - (i == 0 ? 0 : Ends[i - 1]));

    /// <param name="buffers">Buffers to read into, kept across shards by a reader of many (else each shard grows its own).</param>
    public static async Task<ShardImageColumns> OpenAsync(string path, ShardColumnBuffers? buffers = null, CancellationToken cancellationToken = default)
    {
        if (!File.Exists(path)) throw new StreamingException($"{path}: shard file not found");
        // A small buffer: the fast path reads whole column chunks itself; only the footer goes through the stream.
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 4096);
        try
        {
            var reader = await ParquetFiles.OpenAsync(stream, path, cancellationToken).ConfigureAwait(false);
            var fields = reader.Schema.GetDataFields();
            DataField Field(string name) => fields.FirstOrDefault(f => f.Path.Length == 1 && f.Name == name)
                ?? throw new StreamingException($"{path}: not an image shard: column '{name}' is missing");
            try
            {
                return new ShardImageColumns(path, stream, reader, Field("id"), Field("image"), buffers);
            }
            catch
            {
                await reader.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }
        catch
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Reads row group <paramref name="group"/> into <see cref="Ids"/>, <see cref="Images"/> and <see cref="Ends"/>.</summary>
    public async Task ReadRowGroupAsync(int group, CancellationToken cancellationToken = default)
    {
        try
        {
            if (await TryReadFastAsync(group, cancellationToken).ConfigureAwait(false))
            {
                FastRowGroups++;
                return;
            }
            FallbackRowGroups++;
            using var rg = _reader.OpenRowGroupReader(group);
            int n = CheckRows(group, rg.RowCount);
            EnsureRows(n);
            await rg.ReadAsync(_id, Ids.AsMemory(0, n)!, cancellationToken: cancellationToken).ConfigureAwait(false);
            var rows = _b.Rows;
            await rg.ReadAsync(_image, rows.AsMemory(0, n)!, cancellationToken: cancellationToken).ConfigureAwait(false);
            long total = 0;
            for (int i = 0; i < n; i++)
            {
                if (Ids[i] is null) throw new InvalidDataException($"row {i} of row group {group} has a null id");
                total += (rows[i] ?? throw new InvalidDataException($"row {i} of row group {group} has a null image")).Length;
            }
            if (total > Array.MaxLength) throw new InvalidDataException($"row group {group} holds {total:N0} bytes of images, more than one buffer can");
            if (Images.Length < total) _b.Images = new byte[Math.Min(Math.Max(total, Images.Length * 2L), Array.MaxLength)];
            int at = 0;
            for (int i = 0; i < n; i++)
            {
                rows[i].CopyTo(Images, at);
                at += rows[i].Length;
                Ends[i] = at;
                rows[i] = null!;
            }
            Count = n;
        }
        catch (Exception e) when (e is not OperationCanceledException and not StreamingException)
        {
            throw new StreamingException($"{Path}: corrupt image shard ({e.Message})", e);
        }
    }

    /// <summary>The most rows a row group may declare: arrays are sized from the footer, which a stranger writes.</summary>
    public const int MaxRowGroupRows = 1 << 20;

    private int CheckRows(int group, long rows) => rows is >= 0 and <= MaxRowGroupRows ? (int)rows
        : throw new StreamingException($"{Path}: row group {group} declares {rows:N0} rows, over the limit of {MaxRowGroupRows:N0} a row group");

    private void EnsureRows(int n)
    {
        if (_b.Ids.Length >= n) return;
        _b.Ids = new string[n];
        _b.Ends = new int[n];
        _b.Rows = new byte[n][];
    }

    /// <summary>The fast path; false (nothing read) when a column chunk is not one it reads.</summary>
    private async Task<bool> TryReadFastAsync(int group, CancellationToken cancellationToken)
    {
        if (_id.IsNullable || _image.IsNullable || _reader.Metadata is not { } meta || group >= meta.RowGroups.Count) return false;
        var rg = meta.RowGroups[group];
        ColumnMetaData? Column(string name) => rg.Columns.FirstOrDefault(c => c.MetaData?.PathInSchema is [var only] && only == name)?.MetaData;
        if (Column("id") is not { } id || Column("image") is not { } image || !Readable(id) || !Readable(image)) return false;
        int n = CheckRows(group, rg.NumRows);
        if (id.NumValues != n || image.NumValues != n) return false;
        EnsureRows(n);
        int row = 0;
        if (!await ReadChunkAsync(id, n, cancellationToken, value => Ids[row++] = System.Text.Encoding.UTF8.GetString(value)).ConfigureAwait(false)) return false;
        int at = 0;
        row = 0;
        bool ok = await ReadChunkAsync(image, n, cancellationToken, value =>
        {
            if (Images.Length < at + value.Length) _b.Images = GrowTo(Images, at, at + value.Length);
            value.CopyTo(Images.AsSpan(at));
            at += value.Length;
            Ends[row++] = at;
        }).ConfigureAwait(false);
        if (!ok) return false;
        Count = n;
        return true;
    }

    private static bool Readable(ColumnMetaData c) =>
        c.Type == Parquet.Meta.Type.BYTE_ARRAY && c.DictionaryPageOffset is null or 0
        && c.Codec is CompressionCodec.UNCOMPRESSED or CompressionCodec.SNAPPY or CompressionCodec.ZSTD
        && c.Encodings.All(e => e is Parquet.Meta.Encoding.PLAIN or Parquet.Meta.Encoding.RLE or Parquet.Meta.Encoding.BIT_PACKED);

    private static byte[] GrowTo(byte[] buffer, int keep, long need)
    {
        if (need > Array.MaxLength) throw new InvalidDataException($"a row group holds more image bytes than one buffer can ({need:N0})");
        var bigger = new byte[Math.Min(Math.Max(need, buffer.Length * 2L), Array.MaxLength)];
        buffer.AsSpan(0, keep).CopyTo(bigger);
        return bigger;
    }

    private delegate void ValueAction(ReadOnlySpan<byte> value);

    /// <summary>Reads one column chunk's pages and hands each PLAIN value on; false when a page is not one the fast path reads.</summary>
    private async Task<bool> ReadChunkAsync(ColumnMetaData column, int values, CancellationToken cancellationToken, ValueAction each)
    {
        long size = column.TotalCompressedSize;
        if (size <= 0 || size > Array.MaxLength) return false;
        if (column.DataPageOffset < 0 || column.DataPageOffset + size > _stream.Length)
            throw new InvalidDataException($"a column chunk declares {size:N0} bytes at {column.DataPageOffset:N0}, past the end of the file ({_stream.Length:N0} bytes)");
        if (_b.Chunk.Length < size) _b.Chunk = new byte[size];
        var chunk = _b.Chunk;
        int read = await RandomAccess.ReadAsync(_stream.SafeFileHandle, chunk.AsMemory(0, (int)size), column.DataPageOffset, cancellationToken).ConfigureAwait(false);
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
                if (_b.Page.Length < h.UncompressedSize) _b.Page = new byte[h.UncompressedSize];
                var output = _b.Page.AsSpan(0, h.UncompressedSize);
                if (column.Codec == CompressionCodec.SNAPPY) ParquetPages.Unsnappy(payload, output);
                else if ((_b.Zstd ??= new ZstdSharp.Decompressor()).Unwrap(payload, output) != h.UncompressedSize) throw new InvalidDataException("zstd: a page decompresses to another size");
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

    public async ValueTask DisposeAsync()
    {
        await _reader.DisposeAsync().ConfigureAwait(false);
        await _stream.DisposeAsync().ConfigureAwait(false);
        if (_ownsBuffers) _b.Dispose();
    }
}

/// <summary>
/// What <see cref="ShardImageColumns"/> reads into: kept by a reader of many shards (the scoring graph's read stage),
/// so a shard costs no buffer of its own once the largest row group has been seen.
/// </summary>
public sealed class ShardColumnBuffers : IDisposable
{
    internal string[] Ids = [];
    internal byte[] Images = [];
    internal int[] Ends = [];
    internal byte[][] Rows = [];
    internal byte[] Chunk = [], Page = [];
    internal ZstdSharp.Decompressor? Zstd;

    public void Dispose()
    {
        Zstd?.Dispose();
        Zstd = null;
    }
}
