using System.Globalization;
using SkiaSharp;

namespace Streaming.Core.Plots;

/// <summary>One line of a chart.</summary>
public sealed record Series(string Name, IReadOnlyList<(double X, double Y)> Points, SKColor Color);

/// <summary>One chart panel: a title, axis labels and its lines.</summary>
public sealed record Panel(string Title, string XLabel, string YLabel, IReadOnlyList<Series> Series, bool LogY = false);

/// <summary>Draws line charts side by side into a PNG with SkiaSharp: axes, ticks, labels, legend.</summary>
public static class LinePlot
{
    public static readonly SKColor[] Palette =
    [
        new(31, 119, 180), new(255, 127, 14), new(44, 160, 44), new(214, 39, 40), new(148, 103, 189), new(140, 86, 75),
    ];

    public static void Save(string path, IReadOnlyList<Panel> panels, int panelWidth = 520, int height = 380)
    {
        int width = panelWidth * Math.Max(1, panels.Count);
        using var surface = SKSurface.Create(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul))
            ?? throw new InvalidOperationException("could not create a drawing surface");
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        using var typeface = Fonts.Load();
        using var font = new SKFont(typeface, 12);
        using var titleFont = new SKFont(typeface, 14);
        for (int i = 0; i < panels.Count; i++) DrawPanel(canvas, panels[i], new SKRect(i * panelWidth, 0, (i + 1) * panelWidth, height), font, titleFont);
        using var image = surface.Snapshot();
        using var png = image.Encode(SKEncodedImageFormat.Png, 100);
        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        using var file = File.Create(path);
        png.SaveTo(file);
    }

    private static void DrawPanel(SKCanvas canvas, Panel panel, SKRect area, SKFont font, SKFont titleFont)
    {
        using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        using var grid = new SKPaint { Color = new SKColor(225, 225, 225), StrokeWidth = 1 };
        using var axis = new SKPaint { Color = SKColors.Black, StrokeWidth = 1, Style = SKPaintStyle.Stroke };
        var plot = new SKRect(area.Left + 70, area.Top + 36, area.Right - 20, area.Bottom - 50);
        canvas.DrawText(panel.Title, area.MidX, area.Top + 22, SKTextAlign.Center, titleFont, ink);
        canvas.DrawText(panel.XLabel, plot.MidX, area.Bottom - 12, SKTextAlign.Center, font, ink);
        canvas.Save();
        canvas.RotateDegrees(-90, area.Left + 16, plot.MidY);
        canvas.DrawText(panel.YLabel, area.Left + 16, plot.MidY, SKTextAlign.Center, font, ink);
        canvas.Restore();

        var points = panel.Series.SelectMany(s => s.Points).Where(p => double.IsFinite(p.X) && double.IsFinite(p.Y) && (!panel.LogY || p.Y > 0)).ToList();
        if (points.Count == 0)
        {
            canvas.DrawRect(plot, axis);
            canvas.DrawText("no data", plot.MidX, plot.MidY, SKTextAlign.Center, font, ink);
            return;
        }
        double Ty(double y) => panel.LogY ? Math.Log10(y) : y;
        double x0 = points.Min(p => p.X), x1 = points.Max(p => p.X);
        double y0 = points.Min(p => Ty(p.Y)), y1 = points.Max(p => Ty(p.Y));
        if (x1 <= x0) x1 = x0 + 1;
        if (y1 <= y0) { y0 -= 0.5; y1 += 0.5; }
        double pad = (y1 - y0) * 0.05;
        y0 -= pad; y1 += pad;
        float Px(double x) => (float)(plot.Left + (x - x0) / (x1 - x0) * plot.Width);
        float Py(double y) => (float)(plot.Bottom - (Ty(y) - y0) / (y1 - y0) * plot.Height);

        foreach (var t in Ticks(x0, x1))
        {
            float px = (float)(plot.Left + (t - x0) / (x1 - x0) * plot.Width);
            canvas.DrawLine(px, plot.Top, px, plot.Bottom, grid);
            canvas.DrawText(Format(t), px, plot.Bottom + 16, SKTextAlign.Center, font, ink);
        }
        foreach (var t in Ticks(y0, y1))
        {
            float py = (float)(plot.Bottom - (t - y0) / (y1 - y0) * plot.Height);
            canvas.DrawLine(plot.Left, py, plot.Right, py, grid);
            canvas.DrawText(Format(panel.LogY ? Math.Pow(10, t) : t), plot.Left - 6, py + 4, SKTextAlign.Right, font, ink);
        }
        canvas.DrawRect(plot, axis);

        float legendY = plot.Top + 16;
        foreach (var s in panel.Series)
        {
            var valid = s.Points.Where(p => double.IsFinite(p.X) && double.IsFinite(p.Y) && (!panel.LogY || p.Y > 0)).ToList();
            using var line = new SKPaint { Color = s.Color, StrokeWidth = 2, Style = SKPaintStyle.Stroke, IsAntialias = true };
            using var dot = new SKPaint { Color = s.Color, IsAntialias = true };
            if (valid.Count == 1) canvas.DrawCircle(Px(valid[0].X), Py(valid[0].Y), 3, dot);
            using (var path = new SKPath())
            {
                for (int i = 0; i < valid.Count; i++)
                {
                    if (i == 0) path.MoveTo(Px(valid[i].X), Py(valid[i].Y));
                    else path.LineTo(Px(valid[i].X), Py(valid[i].Y));
                }
                canvas.DrawPath(path, line);
            }
            if (valid.Count <= 40) foreach (var p in valid) canvas.DrawCircle(Px(p.X), Py(p.Y), 2.5f, dot);
            canvas.DrawLine(plot.Right - 150, legendY - 4, plot.Right - 126, legendY - 4, line);
            canvas.DrawText(s.Name, plot.Right - 120, legendY, SKTextAlign.Left, font, ink);
            legendY += 16;
        }
    }

    private static IEnumerable<double> Ticks(double lo, double hi)
    {
        double span = hi - lo;
        double step = Math.Pow(10, Math.Floor(Math.Log10(span / 5)));
        if (span / step > 10) step *= 2;
        if (span / step > 10) step *= 2.5;
        for (double t = Math.Ceiling(lo / step) * step; t <= hi + step * 1e-9; t += step) yield return t;
    }

    private static string Format(double v)
    {
        double a = Math.Abs(v);
        if (a < 1e-12) return "0";
        if (a >= 1e6) return (v / 1e6).ToString("0.##", CultureInfo.InvariantCulture) + "M";
        if (a >= 1e4) return (v / 1e3).ToString("0.#", CultureInfo.InvariantCulture) + "k";
        if (a >= 100 || a == 0) return v.ToString("0", CultureInfo.InvariantCulture);
        return v.ToString(a >= 1 ? "0.##" : "0.###", CultureInfo.InvariantCulture);
    }
}

/// <summary>A TrueType font from the system when there is one (no fontconfig needed), else Skia's default.</summary>
public static class Fonts
{
    private static readonly string[] Files =
    [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
    ];

    public static SKTypeface Load()
    {
        foreach (var f in Files)
            if (File.Exists(f) && SKTypeface.FromFile(f) is { } t) return t;
        return SKTypeface.Default;
    }
}
