using SkiaSharp;
using Streaming.Core.Plots;
using Streaming.Core.Shards;

namespace Streaming.Core.Datasets;

/// <summary>Draws a grid of images with their ids and labels into a PNG (SkiaSharp).</summary>
public static class ContactSheet
{
    /// <summary>
    /// Picks <paramref name="count"/> images spread evenly over the dataset (every rows/count-th row) and
    /// draws them, <paramref name="cell"/> pixels a side, with captions. Returns how many were drawn.
    /// </summary>
    public static async Task<int> DrawAsync(string dataset, int count, string outputPng, int cell = 128, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        var manifest = DatasetManifest.Load(dataset);
        if (manifest.Rows == 0) throw new StreamingException($"{dataset}: is empty; nothing to draw");
        count = (int)Math.Min(count, manifest.Rows);
        double step = (double)manifest.Rows / count;
        var picks = new List<ImageRecord>(count);
        long row = 0;
        int next = 0;
        foreach (var shard in manifest.ShardPaths(dataset))
        {
            if (next >= count) break;
            await foreach (var record in ImageShardReader.ReadAsync(shard, cancellationToken).ConfigureAwait(false))
            {
                if (next < count && row == (long)(next * step))
                {
                    picks.Add(record);
                    next++;
                }
                row++;
            }
        }

        var cells = new List<GridCell>(picks.Count);
        foreach (var r in picks)
        {
            string label = r.Label is int l ? (l < manifest.Classes.Count ? $"{l}: {manifest.Classes[l]}" : l.ToString(System.Globalization.CultureInfo.InvariantCulture)) : "(unlabeled)";
            cells.Add(new GridCell(r.Image, [new TextLine(r.Id, SKColors.Black, KeepEnd: true), TextLine.Black(label)]));
        }
        ImageGrid.Save(outputPng, cells, (int)Math.Ceiling(Math.Sqrt(count)), cell);
        return picks.Count;
    }
}
