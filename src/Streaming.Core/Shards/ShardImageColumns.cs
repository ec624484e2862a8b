namespace Streaming.Core.Shards;

/// <summary>
/// The two columns of an image shard that scoring reads, id and image, one row group at a time into buffers it
/// reuses: the ids as strings, the images end to end in one byte buffer. The other columns are never read.
/// </summary>
/// <remarks>
/// Shards as this engine writes them (required PLAIN byte arrays, no dictionary, Snappy, Zstd or no compression) are
/// read by <see cref="ParquetFileReader"/>'s page reader, with no object a row but the id's string: Parquet.Net's own
/// reader allocates some 3 KB a row for these columns. Any other column chunk (another writer's dictionary, nullable
/// columns, another codec) is read by Parquet.Net, with the same result.
/// </remarks>
public sealed class ShardImageColumns : IAsyncDisposable
{
    private readonly ParquetFileReader _file;
    private readonly ParquetColumn _id, _image;
    private readonly ShardColumnBuffers _b;
    private readonly bool _ownsBuffers;

    /// <summary>Row groups read by the page reader, and by Parquet.Net (for tests and the curious).</summary>
    public int FastRowGroups { get; private set; }
    public int FallbackRowGroups { get; private set; }

    private ShardImageColumns(ParquetFileReader file, ParquetColumn id, ParquetColumn image, ShardColumnBuffers buffers, bool ownsBuffers)
    {
        _file = file;
        _id = id;
        _image = image;
        _b = buffers;
        _ownsBuffers = ownsBuffers;
    }

    public string Path => _file.Path;
    public int RowGroupCount => _file.RowGroupCount;

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
        var own = buffers is null ? new ShardColumnBuffers() : null;
        var b = buffers ?? own!;
        try
        {
            // A small buffer: the page reader reads whole column chunks itself; only the footer goes through the stream.
            var file = await ParquetFileReader.OpenAsync(path, 4096, b.Read, cancellationToken).ConfigureAwait(false);
            try
            {
                ParquetColumn Column(string name) => file.Column(name) ?? throw new StreamingException($"{path}: not an image shard: column '{name}' is missing");
                return new ShardImageColumns(file, Column("id"), Column("image"), b, ownsBuffers: own is not null);
            }
            catch
            {
                await file.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }
        catch
        {
            own?.Dispose();
            throw;
        }
    }

    /// <summary>Reads row group <paramref name="group"/> into <see cref="Ids"/>, <see cref="Images"/> and <see cref="Ends"/>.</summary>
    public async Task ReadRowGroupAsync(int group, CancellationToken cancellationToken = default)
    {
        try
        {
            using var rg = _file.OpenRowGroup(group);
            int n = CheckRows(group, rg.RowCount);
            EnsureRows(n);
            bool pages = await rg.ReadStringsAsync(_id, Ids, n, cancellationToken).ConfigureAwait(false);
            int at = 0, row = 0;
            pages &= await rg.ReadBytesAsync(_image, n, value =>
            {
                if (Images.Length < at + value.Length) _b.Images = GrowTo(Images, at, at + value.Length);
                value.CopyTo(Images.AsSpan(at));
                at += value.Length;
                Ends[row++] = at;
            }, () => at = row = 0, cancellationToken).ConfigureAwait(false);
            Count = n;
            if (pages) FastRowGroups++;
            else FallbackRowGroups++;
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
    }

    private static byte[] GrowTo(byte[] buffer, int keep, long need)
    {
        if (need > Array.MaxLength) throw new InvalidDataException($"a row group holds more image bytes than one buffer can ({need:N0})");
        var bigger = new byte[Math.Min(Math.Max(need, buffer.Length * 2L), Array.MaxLength)];
        buffer.AsSpan(0, keep).CopyTo(bigger);
        return bigger;
    }

    public async ValueTask DisposeAsync()
    {
        await _file.DisposeAsync().ConfigureAwait(false);
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
    internal readonly ReadBuffers Read = new();

    public void Dispose() => Read.Dispose();
}
