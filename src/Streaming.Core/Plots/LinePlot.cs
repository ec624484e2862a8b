using System.Globalization;
using SkiaSharp;

namespace Streaming.Core.Plots;

/// <summary>One line of a chart, with optional vertical bars (a spread such as min to max over seeds) at some of its x values.</summary>
public sealed record Series(string Name, IReadOnlyList<(double X, double Y)> Points, SKColor Color, IReadOnlyList<(double X, double Low, double High)>? Bars = null);

/// <summary>One chart panel: a title, axis labels and its lines; either axis may be logarithmic (points at or below 0 are then left out).</summary>
public sealed record Panel(string Title, string XLabel, string YLabel, IReadOnlyList<Series> Series, bool LogY = false, bool LogX = false);

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
        using var surface = PngSurface.Create(width, height);
        var canvas = surface.Canvas;
        using var typeface = Fonts.Load();
        using var font = new SKFont(typeface, 12);
        using var titleFont = new SKFont(typeface, 14);
        for (int i = 0; i < panels.Count; i++) DrawPanel(canvas, panels[i], new SKRect(i * panelWidth, 0, (i + 1) * panelWidth, height), font, titleFont);
        PngSurface.Save(surface, path);
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

        bool Shown((double X, double Y) p) => double.IsFinite(p.X) && double.IsFinite(p.Y) && (!panel.LogY || p.Y > 0) && (!panel.LogX || p.X > 0);
        var points = panel.Series.SelectMany(s => s.Points.Concat((s.Bars ?? []).SelectMany(b => new (double X, double Y)[] { (b.X, b.Low), (b.X, b.High) }))).Where(Shown).ToList();
        if (points.Count == 0)
        {
            canvas.DrawRect(plot, axis);
            canvas.DrawText("no data", plot.MidX, plot.MidY, SKTextAlign.Center, font, ink);
            return;
        }
        double Ty(double y) => panel.LogY ? Math.Log10(y) : y;
        double Tx(double x) => panel.LogX ? Math.Log10(x) : x;
        double x0 = points.Min(p => Tx(p.X)), x1 = points.Max(p => Tx(p.X));
        double y0 = points.Min(p => Ty(p.Y)), y1 = points.Max(p => Ty(p.Y));
        if (x1 <= x0) { x0 -= 0.5; x1 += 0.5; }
        if (y1 <= y0) { y0 -= 0.5; y1 += 0.5; }
        double pad = (y1 - y0) * 0.05;
        y0 -= pad; y1 += pad;
        // Bars sit a little apart at each x: leave room for the outermost inside the frame.
        if (panel.Series.Any(s => s.Bars is { Count: > 0 }))
        {
            double xpad = (x1 - x0) * 0.04;
            x0 -= xpad; x1 += xpad;
        }
        float Px(double x) => (float)(plot.Left + (Tx(x) - x0) / (x1 - x0) * plot.Width);
        float Py(double y) => (float)(plot.Bottom - (Ty(y) - y0) / (y1 - y0) * plot.Height);

        foreach (var t in panel.LogX ? LogTicks(x0, x1) : Ticks(x0, x1))
        {
            float px = Px(t);
            canvas.DrawLine(px, plot.Top, px, plot.Bottom, grid);
            canvas.DrawText(Format(t), px, plot.Bottom + 16, SKTextAlign.Center, font, ink);
        }
        foreach (var t in panel.LogY ? LogTicks(y0, y1) : Ticks(y0, y1))
        {
            float py = Py(t);
            canvas.DrawLine(plot.Left, py, plot.Right, py, grid);
            canvas.DrawText(Format(t), plot.Left - 6, py + 4, SKTextAlign.Right, font, ink);
        }
        canvas.DrawRect(plot, axis);

        var shown = panel.Series.Select(s => s.Points.Where(Shown).Select(p => new SKPoint(Px(p.X), Py(p.Y))).ToList()).ToList();
        var barLines = new List<List<SKPoint>>();
        for (int si = 0; si < panel.Series.Count; si++)
        {
            var valid = shown[si];
            using var line = new SKPaint { Color = panel.Series[si].Color, StrokeWidth = 2, Style = SKPaintStyle.Stroke, IsAntialias = true };
            using var dot = new SKPaint { Color = panel.Series[si].Color, IsAntialias = true };
            if (valid.Count == 1) canvas.DrawCircle(valid[0], 4.5f, dot);
            using (var path = new SKPath())
            {
                for (int i = 0; i < valid.Count; i++)
                {
                    if (i == 0) path.MoveTo(valid[i]);
                    else path.LineTo(valid[i]);
                }
                canvas.DrawPath(path, line);
            }
            if (valid.Count <= 40) foreach (var p in valid) canvas.DrawCircle(p, 2.5f, dot);
            using var bar = new SKPaint { Color = panel.Series[si].Color, StrokeWidth = 1.5f, Style = SKPaintStyle.Stroke, IsAntialias = true };
            // Each series' bars a little apart from the others' at the same x, so that overlapping ranges stay readable.
            float offset = (si - (panel.Series.Count - 1) / 2f) * 5;
            foreach (var b in panel.Series[si].Bars ?? [])
            {
                if (!Shown((b.X, b.Low)) || !Shown((b.X, b.High))) continue;
                float bx = Px(b.X) + offset, lo = Py(b.Low), hi = Py(b.High);
                canvas.DrawLine(bx, lo, bx, hi, bar);
                canvas.DrawLine(bx - 4, lo, bx + 4, lo, bar);
                canvas.DrawLine(bx - 4, hi, bx + 4, hi, bar);
                barLines.Add([new SKPoint(bx, lo), new SKPoint(bx, hi)]);
            }
        }
        DrawLegend(canvas, panel, shown, barLines, plot, font, ink);
    }

    /// <summary>The legend, on a white box in whichever corner of the plot the lines and bars cross least.</summary>
    private static void DrawLegend(SKCanvas canvas, Panel panel, List<List<SKPoint>> shown, List<List<SKPoint>> bars, SKRect plot, SKFont font, SKPaint ink)
    {
        if (panel.Series.Count == 0) return;
        float w = panel.Series.Max(s => font.MeasureText(s.Name)) + 40, h = 16 * panel.Series.Count + 8;
        SKRect[] corners =
        [
            SKRect.Create(plot.Right - w - 6, plot.Top + 6, w, h), SKRect.Create(plot.Left + 6, plot.Top + 6, w, h),
            SKRect.Create(plot.Right - w - 6, plot.Bottom - h - 6, w, h), SKRect.Create(plot.Left + 6, plot.Bottom - h - 6, w, h),
        ];
        int Crossings(SKRect r)
        {
            int hits = 0;
            foreach (var points in shown.Concat(bars))
            {
                for (int i = 0; i < points.Count; i++)
                {
                    if (r.Contains(points[i])) hits += 4;
                    if (i == 0) continue;
                    for (int t = 1; t < 16; t++)
                        if (r.Contains(points[i - 1] + new SKPoint((points[i].X - points[i - 1].X) * t / 16, (points[i].Y - points[i - 1].Y) * t / 16))) hits++;
                }
            }
            return hits;
        }
        var box = corners.MinBy(Crossings);
        using var paper = new SKPaint { Color = new SKColor(255, 255, 255, 225) };
        using var edge = new SKPaint { Color = new SKColor(200, 200, 200), Style = SKPaintStyle.Stroke };
        canvas.DrawRect(box, paper);
        canvas.DrawRect(box, edge);
        float y = box.Top + 16;
        for (int si = 0; si < panel.Series.Count; si++)
        {
            var s = panel.Series[si];
            using var line = new SKPaint { Color = s.Color, StrokeWidth = 2, Style = SKPaintStyle.Stroke, IsAntialias = true };
            using var dot = new SKPaint { Color = s.Color, IsAntialias = true };
            if (shown[si].Count == 1) canvas.DrawCircle(box.Left + 18, y - 4, 4.5f, dot);
            else canvas.DrawLine(box.Left + 6, y - 4, box.Left + 30, y - 4, line);
            canvas.DrawText(s.Name, box.Left + 36, y, SKTextAlign.Left, font, ink);
            y += 16;
        }
    }

    /// <summary>Round tick values (1, 2, 5 x 10^n steps) covering [lo, hi].</summary>
    internal static IEnumerable<double> Ticks(double lo, double hi)
    {
        double span = hi - lo;
        double step = Math.Pow(10, Math.Floor(Math.Log10(span / 5)));
        if (span / step > 10) step *= 2;
        if (span / step > 10) step *= 2.5;
        for (double t = Math.Ceiling(lo / step) * step; t <= hi + step * 1e-9; t += step) yield return t;
    }

    /// <summary>
    /// Tick values (not their logarithms) for a log axis spanning 10^lo .. 10^hi: 1-2-5 within a decade or two,
    /// 1-3 over a few decades, powers of ten beyond; linear ticks when the span is too narrow for two of those.
    /// </summary>
    internal static IEnumerable<double> LogTicks(double lo, double hi)
    {
        double span = hi - lo;
        double[] mantissas = span <= 1.3 ? [1, 2, 5] : span <= 4 ? [1, 3] : [1];
        int every = span <= 8 ? 1 : (int)Math.Ceiling(span / 8);
        var ticks = new List<double>();
        for (int e = (int)Math.Floor(lo); e <= (int)Math.Ceiling(hi); e++)
        {
            if (mantissas.Length == 1 && e % every != 0) continue;
            foreach (double m in mantissas)
            {
                double v = m * Math.Pow(10, e), t = Math.Log10(v);
                if (t >= lo - 1e-9 && t <= hi + 1e-9) ticks.Add(v);
            }
        }
        if (ticks.Count >= 2) return ticks;
        return Ticks(Math.Pow(10, lo), Math.Pow(10, hi)).Where(v => v > 0);
    }

    /// <summary>A short tick label: 0.05, 12, 350, 12.5k, 3M.</summary>
    internal static string Format(double v)
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
