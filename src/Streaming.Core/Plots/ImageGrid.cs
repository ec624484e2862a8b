using SkiaSharp;

namespace Streaming.Core.Plots;

/// <summary>
/// One line of text and its color: a caption line under a cell, or a line of a heading. A caption too wide for
/// its cell keeps its start, or its end when <paramref name="KeepEnd"/> (ids and paths differ at the end).
/// </summary>
internal readonly record struct TextLine(string Text, SKColor Color, bool KeepEnd = false)
{
    public static TextLine Black(string text) => new(text, SKColors.Black);
}

/// <summary>
/// One cell of an <see cref="ImageGrid"/>: encoded image bytes (null, or bytes that do not decode, draw a
/// pink placeholder), the caption lines under it, and a frame color that marks the cell (null: a thin grey border).
/// </summary>
internal sealed record GridCell(byte[]? Image, IReadOnlyList<TextLine> Caption, SKColor? Frame = null);

/// <summary>Draws images into a grid of square cells, each with a caption under it, and an optional heading above: contact sheets.</summary>
internal static class ImageGrid
{
    private const int Pad = 6;
    private const int LineHeight = 13;
    private static readonly SKColor BorderColor = new(200, 200, 200);
    private static readonly SKColor PlaceholderColor = new(255, 220, 220);

    /// <summary>
    /// Draws <paramref name="cells"/> in rows of <paramref name="columns"/>, each image fitted into
    /// <paramref name="cell"/> pixels a side (aspect ratio kept; small images magnified with nearest-neighbour so
    /// pixels stay crisp), and writes the PNG to <paramref name="path"/>. The first heading line is large.
    /// </summary>
    public static void Save(string path, IReadOnlyList<GridCell> cells, int columns, int cell, IReadOnlyList<TextLine>? heading = null)
    {
        heading ??= [];
        using var typeface = Fonts.Load();
        using var font = new SKFont(typeface, 11);
        using var titleFont = new SKFont(typeface, 15);
        using var subFont = new SKFont(typeface, 12);
        SKFont HeadingFont(int i) => i == 0 ? titleFont : subFont;

        columns = Math.Max(1, Math.Min(columns, cells.Count));
        int rows = (cells.Count + columns - 1) / columns;
        int lines = 0;
        foreach (var c in cells) lines = Math.Max(lines, c.Caption.Count);
        int captionHeight = lines == 0 ? 0 : 4 + LineHeight * lines;
        int cw = cell + Pad, ch = cell + captionHeight + Pad;
        float headingWidth = 0;
        for (int i = 0; i < heading.Count; i++) headingWidth = Math.Max(headingWidth, HeadingFont(i).MeasureText(heading[i].Text));
        int top = heading.Count == 0 ? 0 : 16 + 17 * (heading.Count - 1) + 8;
        int width = Math.Max(columns * cw + Pad, (int)Math.Ceiling(headingWidth) + 2 * Pad);
        int height = top + rows * ch + Pad;

        using var surface = PngSurface.Create(width, height);
        var canvas = surface.Canvas;
        using var ink = new SKPaint { IsAntialias = true };
        for (int i = 0; i < heading.Count; i++)
        {
            ink.Color = heading[i].Color;
            canvas.DrawText(heading[i].Text, Pad, Pad + 16 + 17 * i, SKTextAlign.Left, HeadingFont(i), ink);
        }
        using var borderPaint = new SKPaint { Color = BorderColor, Style = SKPaintStyle.Stroke };
        using var framePaint = new SKPaint { Style = SKPaintStyle.Stroke, StrokeWidth = 3 };
        using var placeholderPaint = new SKPaint { Color = PlaceholderColor };
        for (int i = 0; i < cells.Count; i++)
        {
            var c = cells[i];
            float x = Pad + (i % columns) * cw, y = top + Pad + (i / columns) * ch;
            var box = new SKRect(x, y, x + cell, y + cell);
            using var image = c.Image is null ? null : SKImage.FromEncodedData(c.Image);
            if (image is null)
            {
                canvas.DrawRect(box, placeholderPaint);
            }
            else
            {
                float scale = Math.Min((float)cell / image.Width, (float)cell / image.Height);
                float w = image.Width * scale, h = image.Height * scale;
                var dest = new SKRect(x + (cell - w) / 2, y + (cell - h) / 2, x + (cell + w) / 2, y + (cell + h) / 2);
                var sampling = scale > 1 ? new SKSamplingOptions(SKFilterMode.Nearest) : new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear);
                canvas.DrawImage(image, dest, sampling);
            }
            if (c.Frame is SKColor frame)
            {
                framePaint.Color = frame;
                canvas.DrawRect(SKRect.Inflate(box, 1.5f, 1.5f), framePaint);
            }
            else
            {
                canvas.DrawRect(box, borderPaint);
            }
            for (int j = 0; j < c.Caption.Count; j++)
            {
                ink.Color = c.Caption[j].Color;
                canvas.DrawText(PngSurface.Fit(c.Caption[j].Text, font, cell, c.Caption[j].KeepEnd), x, y + cell + 12 + LineHeight * j, SKTextAlign.Left, font, ink);
            }
        }
        PngSurface.Save(surface, path);
    }
}
