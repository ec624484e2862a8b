using System.Globalization;
using System.Text.Json;
using SkiaSharp;
using Streaming.Core.Reports;
using Streaming.Core.Selection;
using Streaming.Core.Shards;

namespace Streaming.Daemon;

/// <summary>
/// The dashboard's contact sheet: a class's images in the latest published D-hat at ranks 1, 10, 100, 1,000, and
/// each image itself as a small PNG.
/// <para>
/// It reads only what the daemon has published or logged, never its live heaps: the snapshot's <c>dhat.parquet</c>
/// (read once a version) and <c>done.jsonl</c>, whose lines say where each scored shard came from. An image is found
/// by one pass over those shards, newest first, that stops when the class's images are all found; its thumbnails are
/// then kept for that snapshot. The pass costs one read of the shards that hold none of them, so its first request
/// for a class grows with the shards scored; later ones are served from memory.
/// </para>
/// </summary>
internal sealed class DhatSheet(DaemonPaths paths, DaemonStatus status)
{
    /// <summary>The ranks the sheet shows (those at or below a class's size).</summary>
    public static readonly int[] Ranks = [1, 10, 100, 1000];
    private const int Thumbnail = 112;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private int _version = -1;
    private DhatStats? _dhat;
    private IReadOnlyList<string> _classes = [];
    private readonly Dictionary<int, Dictionary<int, byte[]?>> _images = [];

    /// <summary>The sheet of one class as JSON-ready data, or null with the reason when there is none to show.</summary>
    public async Task<(object? Sheet, string? Why)> SheetAsync(int cls, CancellationToken ct)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (await LoadAsync(ct).ConfigureAwait(false) is string why) return (null, why);
            if ((uint)cls >= (uint)_classes.Count) return (null, $"class {cls}: outside 0..{_classes.Count - 1}");
            var cells = _dhat!.Cells[cls].Where(c => Ranks.Contains(c.Rank)).Select(c => new
            {
                rank = c.Rank, id = c.Id, score = Math.Round(c.Score, 4),
                image = string.Create(CultureInfo.InvariantCulture, $"/dhat/image?class={cls}&rank={c.Rank}&version={_version}"),
            }).ToList();
            return (new { version = _version, @class = cls, name = _classes[cls], kept = _dhat.Counts[cls], cells }, null);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The PNG thumbnail of the image at <paramref name="rank"/> of <paramref name="cls"/> in snapshot <paramref name="version"/>; null with the reason when there is none.</summary>
    public async Task<(byte[]? Png, string? Why)> ImageAsync(int cls, int rank, int version, CancellationToken ct)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (await LoadAsync(ct).ConfigureAwait(false) is string why) return (null, why);
            if (version != _version) return (null, $"snapshot {version} is no longer the latest ({_version}); ask /dhat again");
            if ((uint)cls >= (uint)_classes.Count) return (null, $"class {cls}: outside 0..{_classes.Count - 1}");
            var cells = _dhat!.Cells[cls].Where(c => Ranks.Contains(c.Rank)).ToList();
            if (cells.All(c => c.Rank != rank)) return (null, $"class {cls} has no image at rank {rank} on the sheet");
            if (!_images.TryGetValue(cls, out var images))
                _images[cls] = images = await FindAsync(cells, ct).ConfigureAwait(false);
            return images.TryGetValue(rank, out var png) && png is not null ? (png, null)
                : (null, $"the image at rank {rank} of class {cls} ({cells.First(c => c.Rank == rank).Id}) is not in any shard the daemon still has");
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Reads the latest snapshot's D-hat when its version changed; the reason when there is none.</summary>
    private async Task<string?> LoadAsync(CancellationToken ct)
    {
        var pointer = status.View.Snapshot;
        if (pointer is null) return "no snapshot has been published yet";
        if (pointer.Version == _version) return null;
        string dhat = Path.Combine(paths.State, pointer.Folder, SelectionManifest.DhatFileName);
        var classes = status.View.Classes;
        try
        {
            _dhat = await DhatStats.ReadAsync(dhat, classes.Count, null, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or Core.StreamingException)
        {
            // Pruned (snapshot.keep) between the pointer and the read: the next request finds the newer one.
            _version = -1;
            return $"snapshot {pointer.Version} could not be read ({e.Message})";
        }
        _classes = classes;
        _version = pointer.Version;
        _images.Clear();
        return null;
    }

    /// <summary>One pass over the scored shards, newest first, until every cell's image is found.</summary>
    private async Task<Dictionary<int, byte[]?>> FindAsync(List<ContactCell> cells, CancellationToken ct)
    {
        var byId = cells.ToDictionary(c => c.Id, c => c.Rank, StringComparer.Ordinal);
        var found = new Dictionary<int, byte[]?>();
        foreach (string shard in ShardSources())
        {
            if (found.Count == byId.Count) break;
            try
            {
                await foreach (var record in ImageShardReader.ReadAsync(shard, ct).ConfigureAwait(false))
                {
                    if (!byId.TryGetValue(record.Id, out int rank) || found.ContainsKey(rank)) continue;
                    found[rank] = Png(record.Image);
                    if (found.Count == byId.Count) break;
                }
            }
            catch (Exception e) when (e is IOException or Core.StreamingException)
            {
                // Moved to processed/ or quarantined since done.jsonl was read: the images it held are reported missing.
            }
        }
        return found;
    }

    /// <summary>Where the scored shards lie now, newest first: where each was scored from, or <c>processed/</c> for a drop moved there.</summary>
    private IEnumerable<string> ShardSources()
    {
        string log = Path.Combine(paths.State, DaemonState.DoneLog);
        if (!File.Exists(log)) yield break;
        string text = File.ReadAllText(log);
        var lines = text[..(text.LastIndexOf('\n') + 1)].Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = lines.Length - 1; i >= 0; i--)
        {
            DoneShard? d;
            try
            {
                d = JsonSerializer.Deserialize<DoneShard>(lines[i]);
            }
            catch (JsonException)
            {
                continue;
            }
            if (d?.Source is not string source) continue;
            string? path = File.Exists(source) ? source
                : File.Exists(Path.Combine(paths.Processed, Path.GetFileName(source))) ? Path.Combine(paths.Processed, Path.GetFileName(source)) : null;
            if (path is not null && seen.Add(path)) yield return path;
        }
    }

    /// <summary>The image as a PNG at most <see cref="Thumbnail"/> pixels a side (whatever its format, which a browser may not show); null when it does not decode.</summary>
    private static byte[]? Png(byte[] encoded)
    {
        using var bitmap = SKBitmap.Decode(encoded);
        if (bitmap is null) return null;
        double scale = Math.Min(1.0, (double)Thumbnail / Math.Max(bitmap.Width, bitmap.Height));
        using var sized = scale < 1 ? bitmap.Resize(new SKImageInfo(Math.Max(1, (int)(bitmap.Width * scale)), Math.Max(1, (int)(bitmap.Height * scale))), SKSamplingOptions.Default) : null;
        using var image = SKImage.FromBitmap(sized ?? bitmap);
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }
}
