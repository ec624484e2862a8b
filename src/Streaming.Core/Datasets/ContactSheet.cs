using SkiaSharp;
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

        int columns = (int)Math.Ceiling(Math.Sqrt(count));
        int rows = (count + columns - 1) / columns;
        const int captionHeight = 30, pad = 6;
        int cw = cell + pad, ch = cell + captionHeight + pad;
        using var surface = SKSurface.Create(new SKImageInfo(columns * cw + pad, rows * ch + pad, SKColorType.Rgba8888, SKAlphaType.Premul))
            ?? throw new InvalidOperationException("could not create a drawing surface");
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        using var typeface = Plots.Fonts.Load();
        using var font = new SKFont(typeface, 11);
        using var textPaint = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        using var borderPaint = new SKPaint { Color = new SKColor(200, 200, 200), Style = SKPaintStyle.Stroke };
        using var badPaint = new SKPaint { Color = new SKColor(255, 220, 220) };

        for (int i = 0; i < picks.Count; i++)
        {
            var r = picks[i];
            float x = pad + (i % columns) * cw, y = pad + (i / columns) * ch;
            var box = new SKRect(x, y, x + cell, y + cell);
            using var image = SKImage.FromEncodedData(r.Image);
            if (image is null)
            {
                canvas.DrawRect(box, badPaint);
            }
            else
            {
                // Fit inside the cell keeping the aspect ratio; tiny images are magnified with nearest-neighbour so pixels stay crisp.
                float scale = Math.Min((float)cell / image.Width, (float)cell / image.Height);
                float w = image.Width * scale, h = image.Height * scale;
                var dest = new SKRect(x + (cell - w) / 2, y + (cell - h) / 2, x + (cell + w) / 2, y + (cell + h) / 2);
                var sampling = scale > 1 ? new SKSamplingOptions(SKFilterMode.Nearest) : new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear);
                canvas.DrawImage(image, dest, sampling);
            }
            canvas.DrawRect(box, borderPaint);
            string label = r.Label is int l ? (l < manifest.Classes.Count ? $"{l}: {manifest.Classes[l]}" : l.ToString(System.Globalization.CultureInfo.InvariantCulture)) : "(unlabeled)";
            canvas.DrawText(Fit(r.Id, font, cell), x, y + cell + 12, SKTextAlign.Left, font, textPaint);
            canvas.DrawText(Fit(label, font, cell), x, y + cell + 25, SKTextAlign.Left, font, textPaint);
        }

        using var snapshot = surface.Snapshot();
        using var png = snapshot.Encode(SKEncodedImageFormat.Png, 100);
        string? dir = Path.GetDirectoryName(Path.GetFullPath(outputPng));
        if (dir is not null) Directory.CreateDirectory(dir);
        await using (var file = File.Create(outputPng))
            png.SaveTo(file);
        return picks.Count;
    }

    private static string Fit(string text, SKFont font, float width)
    {
        if (font.MeasureText(text) <= width) return text;
        while (text.Length > 1 && font.MeasureText("…" + text) > width) text = text[1..];
        return "…" + text;
    }
}
