using Parquet;
using Parquet.Schema;

namespace Streaming.Core.Shards;

/// <summary>
/// The two columns of an image shard that scoring reads, id and image, one row group at a time into buffers it
/// reuses: the ids as strings, the images end to end in one byte buffer. The other columns are never read.
/// </summary>
public sealed class ShardImageColumns : IAsyncDisposable
{
    private readonly FileStream _stream;
    private readonly ParquetReader _reader;
    private readonly DataField _id, _image;
    private byte[][] _rows = [];

    private ShardImageColumns(string path, FileStream stream, ParquetReader reader, DataField id, DataField image)
    {
        Path = path;
        _stream = stream;
        _reader = reader;
        _id = id;
        _image = image;
    }

    public string Path { get; }
    public int RowGroupCount => _reader.RowGroupCount;

    /// <summary>The ids of the last row group read (its first <see cref="Count"/> entries).</summary>
    public string[] Ids { get; private set; } = [];

    /// <summary>The images of the last row group read, end to end; image i ends at <see cref="Ends"/>[i].</summary>
    public byte[] Images { get; private set; } = [];

    public int[] Ends { get; private set; } = [];

    /// <summary>Rows in the last row group read.</summary>
    public int Count { get; private set; }

    public ReadOnlySpan<byte> Image(int i) => Images.AsSpan(i == 0 ? 0 : Ends[i - 1], Ends[i] - (i == 0 ? 0 : Ends[i - 1]));

    public static async Task<ShardImageColumns> OpenAsync(string path, CancellationToken cancellationToken = default)
    {
        if (!File.Exists(path)) throw new StreamingException($"{path}: shard file not found");
        var stream = ParquetFiles.OpenRead(path);
        try
        {
            var reader = await ParquetFiles.OpenAsync(stream, path, cancellationToken).ConfigureAwait(false);
            var fields = reader.Schema.GetDataFields();
            DataField Field(string name) => fields.FirstOrDefault(f => f.Path.Length == 1 && f.Name == name)
                ?? throw new StreamingException($"{path}: not an image shard: column '{name}' is missing");
            try
            {
                return new ShardImageColumns(path, stream, reader, Field("id"), Field("image"));
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
            using var rg = _reader.OpenRowGroupReader(group);
            int n = checked((int)rg.RowCount);
            if (Ids.Length < n)
            {
                Ids = new string[n];
                Ends = new int[n];
                _rows = new byte[n][];
            }
            await rg.ReadAsync(_id, Ids.AsMemory(0, n)!, cancellationToken: cancellationToken).ConfigureAwait(false);
            await rg.ReadAsync(_image, _rows.AsMemory(0, n)!, cancellationToken: cancellationToken).ConfigureAwait(false);
            long total = 0;
            for (int i = 0; i < n; i++)
            {
                if (Ids[i] is null) throw new InvalidDataException($"row {i} of row group {group} has a null id");
                total += (_rows[i] ?? throw new InvalidDataException($"row {i} of row group {group} has a null image")).Length;
            }
            if (total > Array.MaxLength) throw new InvalidDataException($"row group {group} holds {total:N0} bytes of images, more than one buffer can");
            if (Images.Length < total) Images = new byte[Math.Min(Math.Max(total, Images.Length * 2L), Array.MaxLength)];
            int at = 0;
            for (int i = 0; i < n; i++)
            {
                _rows[i].CopyTo(Images, at);
                at += _rows[i].Length;
                Ends[i] = at;
                _rows[i] = null!;
            }
            Count = n;
        }
        catch (Exception e) when (e is not OperationCanceledException and not StreamingException)
        {
            throw new StreamingException($"{Path}: corrupt image shard ({e.Message})", e);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _reader.DisposeAsync().ConfigureAwait(false);
        await _stream.DisposeAsync().ConfigureAwait(false);
    }
}
