using System.Runtime.CompilerServices;

namespace Streaming.Core.Shards;

/// <summary>Reads image shards row group by row group; memory holds one row group at a time.</summary>
public static class ImageShardReader
{
    /// <summary>Streams every record of a shard in file order.</summary>
    public static async IAsyncEnumerable<ImageRecord> ReadAsync(string path, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await using var shard = await OpenAsync(path, cancellationToken).ConfigureAwait(false);
        for (int g = 0; g < shard.File.RowGroupCount; g++)
        {
            ImageRecord[] rows = await ReadRowGroupAsync(shard, g, cancellationToken).ConfigureAwait(false);
            foreach (var row in rows) yield return row;
        }
    }

    /// <summary>
    /// The encoded images of <paramref name="ids"/>, found in one pass over <paramref name="shards"/> in order that ends
    /// as soon as all are found (the first of a repeated id wins). Ids not found are absent from the result.
    /// </summary>
    public static async Task<Dictionary<string, byte[]>> FindAsync(IEnumerable<string> shards, IReadOnlySet<string> ids, CancellationToken cancellationToken = default)
    {
        var found = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        if (ids.Count == 0) return found;
        foreach (var shard in shards)
        {
            await foreach (var record in ReadAsync(shard, cancellationToken).ConfigureAwait(false))
            {
                if (!ids.Contains(record.Id) || !found.TryAdd(record.Id, record.Image)) continue;
                if (found.Count == ids.Count) return found;
            }
        }
        return found;
    }

    /// <summary>Reads only the id and label columns of a shard (no image bytes), for splits and inventories.</summary>
    public static async Task<List<(string Id, int? Label)>> ReadIdsAndLabelsAsync(string path, CancellationToken cancellationToken = default)
    {
        await using var shard = await OpenAsync(path, cancellationToken).ConfigureAwait(false);
        var result = new List<(string, int?)>();
        for (int g = 0; g < shard.File.RowGroupCount; g++)
        {
            try
            {
                using var rg = shard.File.OpenRowGroup(g);
                int n = checked((int)rg.RowCount);
                var ids = new string?[n];
                var labels = new int?[n];
                await rg.ReadAsync(shard.Id, ids.AsMemory(), cancellationToken: cancellationToken).ConfigureAwait(false);
                await rg.ReadAsync<int>(shard.Label, labels.AsMemory(), cancellationToken: cancellationToken).ConfigureAwait(false);
                for (int i = 0; i < n; i++) result.Add((ids[i] ?? throw new InvalidDataException($"row {i} has a null id"), labels[i]));
            }
            catch (Exception e) when (e is not OperationCanceledException and not StreamingException)
            {
                throw Corrupt(path, e);
            }
        }
        return result;
    }

    private static async Task<ImageRecord[]> ReadRowGroupAsync(OpenShard shard, int group, CancellationToken cancellationToken)
    {
        try
        {
            using var rg = shard.File.OpenRowGroup(group);
            int n = checked((int)rg.RowCount);
            var ids = new string?[n];
            var images = new byte[]?[n];
            var labels = new int?[n];
            var sources = new string?[n];
            var formats = new string?[n];
            var widths = new int[n];
            var heights = new int[n];
            var hashes = new string?[n];
            await rg.ReadAsync(shard.Id, ids.AsMemory(), cancellationToken: cancellationToken).ConfigureAwait(false);
            await rg.ReadAsync(shard.Image, images.AsMemory(), cancellationToken: cancellationToken).ConfigureAwait(false);
            await rg.ReadAsync<int>(shard.Label, labels.AsMemory(), cancellationToken: cancellationToken).ConfigureAwait(false);
            await rg.ReadAsync(shard.Source, sources.AsMemory(), cancellationToken: cancellationToken).ConfigureAwait(false);
            await rg.ReadAsync(shard.Format, formats.AsMemory(), cancellationToken: cancellationToken).ConfigureAwait(false);
            await rg.ReadAsync<int>(shard.Width, widths.AsMemory(), cancellationToken: cancellationToken).ConfigureAwait(false);
            await rg.ReadAsync<int>(shard.Height, heights.AsMemory(), cancellationToken: cancellationToken).ConfigureAwait(false);
            await rg.ReadAsync(shard.Sha256, hashes.AsMemory(), cancellationToken: cancellationToken).ConfigureAwait(false);
            var tags = shard.Tags is null ? null : await rg.ReadListsAsync<int>(shard.Tags, n, listNullable: true, cancellationToken).ConfigureAwait(false);
            var rows = new ImageRecord[n];
            for (int i = 0; i < n; i++)
            {
                string id = ids[i] ?? throw new InvalidDataException($"row {i} of row group {group} has a null id");
                byte[] image = images[i] ?? throw new InvalidDataException($"row {i} of row group {group} has a null image");
                rows[i] = new ImageRecord(id, image, labels[i], sources[i] ?? "", formats[i] ?? "", widths[i], heights[i], hashes[i] ?? "") { Tags = tags?[i] };
            }
            return rows;
        }
        catch (Exception e) when (e is not OperationCanceledException and not StreamingException)
        {
            throw Corrupt(shard.Path, e);
        }
    }

    private static StreamingException Corrupt(string path, Exception e) =>
        new($"{path}: corrupt image shard ({e.Message})", e);

    private static async Task<OpenShard> OpenAsync(string path, CancellationToken cancellationToken)
    {
        if (!File.Exists(path)) throw new StreamingException($"{path}: shard file not found");
        var file = await ParquetFileReader.OpenAsync(path, cancellationToken: cancellationToken).ConfigureAwait(false);
        try
        {
            ParquetColumn Column(string name) => file.Column(name) ?? throw new StreamingException($"{path}: not an image shard: column '{name}' is missing");
            return new OpenShard(path, file, Column("id"), Column("image"), Column("label"), Column("source"),
                Column("format"), Column("width"), Column("height"), Column("sha256"), file.Columns.FirstOrDefault(c => c.Path.Count > 1 && c.Path[0] == "tags"));
        }
        catch
        {
            await file.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private sealed record OpenShard(string Path, ParquetFileReader File, ParquetColumn Id, ParquetColumn Image, ParquetColumn Label,
        ParquetColumn Source, ParquetColumn Format, ParquetColumn Width, ParquetColumn Height, ParquetColumn Sha256, ParquetColumn? Tags) : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => File.DisposeAsync();
    }
}
