using Parquet;

namespace Streaming.Core.Shards;

/// <summary>
/// Writes one image shard: a Parquet file written in row groups. The file appears under its final
/// name only when <see cref="CompleteAsync"/> succeeds; before that it lives under a temporary name.
/// </summary>
public sealed class ImageShardWriter : IAsyncDisposable
{
    private readonly string _path;
    private readonly string _tempPath;
    private readonly int _rowGroupSize;
    private readonly FileStream _stream;
    private readonly ParquetWriter _writer;
    private readonly List<ImageRecord> _pending = new();
    private readonly bool _tags;
    private bool _completed;

    private ImageShardWriter(string path, string tempPath, int rowGroupSize, FileStream stream, ParquetWriter writer, bool tags)
    {
        _tags = tags;
        _path = path;
        _tempPath = tempPath;
        _rowGroupSize = rowGroupSize;
        _stream = stream;
        _writer = writer;
    }

    /// <summary>Rows written so far, buffered rows included.</summary>
    public long Rows { get; private set; }

    /// <summary>Encoded image bytes written so far, buffered rows included.</summary>
    public long ImageBytes { get; private set; }

    public static async Task<ImageShardWriter> CreateAsync(string path, ShardCompression compression = ShardCompression.Snappy,
        int rowGroupSize = 1024, CancellationToken cancellationToken = default, bool tags = false)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rowGroupSize, 1);
        string temp = AtomicFile.TempFor(path);
        var stream = new FileStream(temp, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 20);
        try
        {
            var options = new ParquetOptions { CompressionMethod = compression.ToParquet() };
            var writer = await ParquetWriter.CreateAsync(tags ? ImageShardSchema.WithTags : ImageShardSchema.Schema, stream, options, append: false, cancellationToken).ConfigureAwait(false);
            return new ImageShardWriter(path, temp, rowGroupSize, stream, writer, tags);
        }
        catch
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            File.Delete(temp);
            throw;
        }
    }

    public async Task WriteAsync(ImageRecord record, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        if (record.Tags is not null && !_tags) throw new InvalidOperationException($"'{record.Id}' has tags, but the shard was opened without a tags column");
        _pending.Add(record);
        Rows++;
        ImageBytes += record.Image.Length;
        if (_pending.Count >= _rowGroupSize) await FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task FlushAsync(CancellationToken cancellationToken)
    {
        if (_pending.Count == 0) return;
        int n = _pending.Count;
        var ids = new string[n];
        var images = new byte[n][];
        var labels = new int?[n];
        var sources = new string[n];
        var formats = new string[n];
        var widths = new int[n];
        var heights = new int[n];
        var hashes = new string[n];
        for (int i = 0; i < n; i++)
        {
            var r = _pending[i];
            ids[i] = r.Id; images[i] = r.Image; labels[i] = r.Label; sources[i] = r.Source;
            formats[i] = r.Format; widths[i] = r.Width; heights[i] = r.Height; hashes[i] = r.Sha256;
        }
        using (var rg = _writer.CreateRowGroup())
        {
            await rg.WriteAsync(ImageShardSchema.Id, ids).ConfigureAwait(false);
            await rg.WriteAsync(ImageShardSchema.Image, images).ConfigureAwait(false);
            await rg.WriteAsync<int>(ImageShardSchema.Label, labels.AsMemory(), cancellationToken: cancellationToken).ConfigureAwait(false);
            await rg.WriteAsync(ImageShardSchema.Source, sources).ConfigureAwait(false);
            await rg.WriteAsync(ImageShardSchema.Format, formats).ConfigureAwait(false);
            await rg.WriteAsync<int>(ImageShardSchema.Width, widths.AsMemory(), cancellationToken: cancellationToken).ConfigureAwait(false);
            await rg.WriteAsync<int>(ImageShardSchema.Height, heights.AsMemory(), cancellationToken: cancellationToken).ConfigureAwait(false);
            await rg.WriteAsync(ImageShardSchema.Sha256, hashes).ConfigureAwait(false);
            if (_tags) await WriteTagsAsync(rg, cancellationToken).ConfigureAwait(false);
        }
        _pending.Clear();
    }

    /// <summary>
    /// The pending rows' tags as a list column: definition level 0 for a null list, 1 for an empty one, 2 for each
    /// element; repetition 0 where a row starts. Only the elements are written as values.
    /// </summary>
    private async Task WriteTagsAsync(ParquetRowGroupWriter rg, CancellationToken cancellationToken)
    {
        var values = new List<int>();
        var definition = new List<int>();
        var repetition = new List<int>();
        int max = ImageShardSchema.TagElement.MaxDefinitionLevel;
        foreach (var r in _pending)
        {
            if (r.Tags is null || r.Tags.Length == 0)
            {
                definition.Add(r.Tags is null ? 0 : max - 1);
                repetition.Add(0);
                continue;
            }
            for (int i = 0; i < r.Tags.Length; i++)
            {
                values.Add(r.Tags[i]);
                definition.Add(max);
                repetition.Add(i == 0 ? 0 : 1);
            }
        }
        await rg.WriteAllPartsAsync<int>(ImageShardSchema.TagElement, values.ToArray().AsMemory(), definition.ToArray().AsMemory(), repetition.ToArray().AsMemory(),
            cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Flushes, closes and renames the shard into place.</summary>
    public async Task CompleteAsync(CancellationToken cancellationToken = default)
    {
        await FlushAsync(cancellationToken).ConfigureAwait(false);
        await _writer.DisposeAsync().ConfigureAwait(false);
        await _stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        _stream.Flush(flushToDisk: true);
        await _stream.DisposeAsync().ConfigureAwait(false);
        AtomicFile.Rename(_tempPath, _path);
        _completed = true;
    }

    public async ValueTask DisposeAsync()
    {
        if (_completed) return;
        _completed = true;
        try { await _writer.DisposeAsync().ConfigureAwait(false); } catch (Exception) { /* abandoning a partial file */ }
        await _stream.DisposeAsync().ConfigureAwait(false);
        File.Delete(_tempPath);
    }
}
