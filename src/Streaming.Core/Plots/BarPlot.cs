using System.Globalization;
using SkiaSharp;

namespace Streaming.Core.Plots;

/// <summary>One set of bars, a value per category (null: no bar, a dash instead), labelled with <paramref name="Format"/>.</summary>
internal sealed record BarSeries(string Name, IReadOnlyList<double?> Values, SKColor Color, string Format = "0");

/// <summary>
/// One bar chart: categories along x, one bar per series in each (or, <paramref name="Stacked"/>, one bar per
/// category with the series stacked bottom to top). <paramref name="YMax"/> fixes the top of the axis (otherwise
/// it fits the data); <paramref name="Reference"/> draws a dashed horizontal line with a label.
/// </summary>
internal sealed record BarPanel(string Title, string YLabel, IReadOnlyList<string> Categories, IReadOnlyList<BarSeries> Series,
    double? YMax = null, (double Y, string Label)? Reference = null, bool Stacked = false);

/// <summary>
/// Draws grouped bar charts, panels stacked top to bottom, into a PNG with SkiaSharp. Category names are slanted
/// when they do not fit under their bars, and replaced by evenly spaced indexes when there are too many to read.
/// </summary>
internal static class BarPlot
{
    private const int Left = 70, Right = 20, Top = 46;
    private const int MaxNamedCategories = 60;

    public static void Save(string path, IReadOnlyList<BarPanel> panels, int? width = null, int panelHeight = 300)
    {
        using var typeface = Fonts.Load();
        using var font = new SKFont(typeface, 12);
        using var small = new SKFont(typeface, 10);
        using var titleFont = new SKFont(typeface, 14);
        int categories = panels.Count == 0 ? 0 : panels.Max(p => p.Categories.Count);
        int series = panels.Count == 0 ? 1 : Math.Max(1, panels.Max(p => p.Series.Count));
        int w = width ?? Math.Clamp(Left + Right + categories * Math.Max(72, 16 * series + 20), 560, 2400);
        var bottoms = panels.Select(p => BottomMargin(p, w, font)).ToList();
        int height = panels.Count == 0 ? 1 : panels.Count * panelHeight + bottoms.Sum();
        using var surface = PngSurface.Create(w, height);
        float y = 0;
        for (int i = 0; i < panels.Count; i++)
        {
            var area = new SKRect(0, y, w, y + panelHeight + bottoms[i]);
            DrawPanel(surface.Canvas, panels[i], area, bottoms[i], font, small, titleFont);
            y = area.Bottom;
        }
        PngSurface.Save(surface, path);
    }

    /// <summary>Room under the plot for the category labels: a line when they fit flat, more when slanted.</summary>
    private static int BottomMargin(BarPanel panel, int width, SKFont font)
    {
        if (!Slanted(panel, width, font)) return 30;
        float longest = panel.Categories.Max(c => font.MeasureText(Label(c, font)));
        return (int)Math.Ceiling(longest * 0.71f) + 24; // sin 45 degrees
    }

    private static bool Named(BarPanel panel) => panel.Categories.Count <= MaxNamedCategories;

    private static bool Slanted(BarPanel panel, int width, SKFont font)
    {
        if (!Named(panel) || panel.Categories.Count == 0) return false;
        float slot = (float)(width - Left - Right) / panel.Categories.Count;
        return panel.Categories.Any(c => font.MeasureText(c) > slot - 4);
    }

    private static string Label(string category, SKFont font) => PngSurface.Fit(category, font, 110, keepEnd: false);

    private static void DrawPanel(SKCanvas canvas, BarPanel panel, SKRect area, int bottom, SKFont font, SKFont small, SKFont titleFont)
    {
        using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        using var grey = new SKPaint { Color = new SKColor(110, 110, 110), IsAntialias = true };
        using var grid = new SKPaint { Color = new SKColor(225, 225, 225), StrokeWidth = 1 };
        using var axis = new SKPaint { Color = SKColors.Black, StrokeWidth = 1, Style = SKPaintStyle.Stroke };
        var plot = new SKRect(area.Left + Left, area.Top + Top, area.Right - Right, area.Bottom - bottom);
        canvas.DrawText(panel.Title, area.MidX, area.Top + 22, SKTextAlign.Center, titleFont, ink);
        canvas.Save();
        canvas.RotateDegrees(-90, area.Left + 16, plot.MidY);
        canvas.DrawText(panel.YLabel, area.Left + 16, plot.MidY, SKTextAlign.Center, font, ink);
        canvas.Restore();

        int n = panel.Categories.Count;
        double top = panel.YMax ?? 0;
        foreach (var s in panel.Series)
            foreach (var v in s.Values)
                if (v is double d && double.IsFinite(d)) top = Math.Max(top, panel.YMax is null ? d * 1.05 : d);
        if (panel.Stacked)
            for (int c = 0; c < n; c++)
            {
                double sum = panel.Series.Sum(s => c < s.Values.Count && s.Values[c] is double d && double.IsFinite(d) ? d : 0);
                top = Math.Max(top, panel.YMax is null ? sum * 1.05 : sum);
            }
        if (panel.Reference is { } r0) top = Math.Max(top, r0.Y);
        if (top <= 0) top = 1;
        float Py(double v) => (float)(plot.Bottom - v / top * plot.Height);
        foreach (var t in LinePlot.Ticks(0, top))
        {
            canvas.DrawLine(plot.Left, Py(t), plot.Right, Py(t), grid);
            canvas.DrawText(LinePlot.Format(t), plot.Left - 6, Py(t) + 4, SKTextAlign.Right, font, ink);
        }
        if (n == 0 || panel.Series.Count == 0)
        {
            canvas.DrawRect(plot, axis);
            canvas.DrawText("no data", plot.MidX, plot.MidY, SKTextAlign.Center, font, ink);
            return;
        }

        using var whiteInk = new SKPaint { Color = SKColors.White, IsAntialias = true };
        float slot = plot.Width / n;
        float groupWidth = slot * 0.8f, barWidth = panel.Stacked ? groupWidth : groupWidth / panel.Series.Count;
        bool valueLabels = n <= 40 && barWidth >= 18;
        var stackBase = new double[n];
        for (int si = 0; si < panel.Series.Count; si++)
        {
            var s = panel.Series[si];
            using var fill = new SKPaint { Color = s.Color, IsAntialias = true };
            for (int c = 0; c < n && c < s.Values.Count; c++)
            {
                float x = plot.Left + c * slot + (slot - groupWidth) / 2 + (panel.Stacked ? 0 : si * barWidth);
                float cx = x + barWidth / 2;
                if (s.Values[c] is not double v || !double.IsFinite(v))
                {
                    if (valueLabels && !panel.Stacked) canvas.DrawText("–", cx, plot.Bottom - 4, SKTextAlign.Center, small, grey);
                    continue;
                }
                if (panel.Stacked)
                {
                    // A segment from the top of the ones below it; its value inside when it is tall enough.
                    double low = stackBase[c], high = low + v;
                    stackBase[c] = high;
                    canvas.DrawRect(new SKRect(x + 1, Py(high), x + barWidth - 1, Py(low)), fill);
                    string label = v.ToString(s.Format, CultureInfo.InvariantCulture);
                    if (valueLabels && Py(low) - Py(high) >= 14 && small.MeasureText(label) <= barWidth - 2)
                        canvas.DrawText(label, cx, (Py(low) + Py(high)) / 2 + 4, SKTextAlign.Center, small, whiteInk);
                    continue;
                }
                canvas.DrawRect(new SKRect(x + (barWidth > 6 ? 1 : 0), Py(v), x + barWidth - (barWidth > 6 ? 1 : 0), plot.Bottom), fill);
                // The value inside the top of its bar, or above a bar too short to hold it.
                if (valueLabels)
                {
                    string text = v.ToString(s.Format, CultureInfo.InvariantCulture);
                    bool inside = plot.Bottom - Py(v) >= 18 && small.MeasureText(text) <= barWidth - 2;
                    float baseline = inside ? Py(v) + 12 : Py(v) - 3;
                    // Clear of the reference line: below it inside a bar that is tall enough, above it otherwise.
                    if (panel.Reference is { } line && Math.Abs(baseline - 4 - Py(line.Y)) < 9)
                        baseline = inside && plot.Bottom - Py(line.Y) >= 30 ? Py(line.Y) + 14 : Py(line.Y) - 5;
                    bool white = inside && baseline > Py(v) + 8;
                    canvas.DrawText(text, cx, baseline, SKTextAlign.Center, small, white ? whiteInk : ink);
                }
            }
        }

        if (panel.Reference is { } r)
        {
            using var dash = new SKPaint { Color = new SKColor(200, 30, 30), StrokeWidth = 1.5f, Style = SKPaintStyle.Stroke, IsAntialias = true,
                PathEffect = SKPathEffect.CreateDash([6, 4], 0) };
            using var red = new SKPaint { Color = new SKColor(200, 30, 30), IsAntialias = true };
            canvas.DrawLine(plot.Left, Py(r.Y), plot.Right, Py(r.Y), dash);
            // Its label above the plot's top right corner, where no bar reaches.
            float labelWidth = font.MeasureText(r.Label);
            canvas.DrawLine(plot.Right - labelWidth - 34, plot.Top - 8, plot.Right - labelWidth - 6, plot.Top - 8, dash);
            canvas.DrawText(r.Label, plot.Right, plot.Top - 4, SKTextAlign.Right, font, red);
        }
        canvas.DrawRect(plot, axis);

        // Category labels: flat and centred when they fit, slanted at 45 degrees when not, indexes at round steps when there are too many.
        if (Named(panel))
        {
            bool slanted = Slanted(panel, (int)area.Width, font);
            for (int c = 0; c < n; c++)
            {
                float cx = plot.Left + (c + 0.5f) * slot;
                if (!slanted)
                {
                    canvas.DrawText(panel.Categories[c], cx, plot.Bottom + 16, SKTextAlign.Center, font, ink);
                    continue;
                }
                canvas.Save();
                canvas.RotateDegrees(-45, cx + 4, plot.Bottom + 12);
                canvas.DrawText(Label(panel.Categories[c], font), cx + 4, plot.Bottom + 12, SKTextAlign.Right, font, ink);
                canvas.Restore();
            }
        }
        else
        {
            foreach (var t in LinePlot.Ticks(0, n - 1))
            {
                float cx = plot.Left + ((float)t + 0.5f) * slot;
                canvas.DrawLine(cx, plot.Bottom, cx, plot.Bottom + 4, axis);
                canvas.DrawText(LinePlot.Format(t), cx, plot.Bottom + 16, SKTextAlign.Center, font, ink);
            }
        }

        if (panel.Series.Count > 1) DrawLegend(canvas, panel, plot, font, ink);
    }

    /// <summary>
    /// The series' names in one row above the plot, from its left edge, where no bar reaches (stacked bars fill the
    /// plot to the top, so a legend inside it would cover them). Inside the top right corner instead when the row
    /// would run into a reference line's label or past the plot.
    /// </summary>
    private static void DrawLegend(SKCanvas canvas, BarPanel panel, SKRect plot, SKFont font, SKPaint ink)
    {
        void Entry(BarSeries s, float x, float y)
        {
            using var fill = new SKPaint { Color = s.Color };
            canvas.DrawRect(new SKRect(x, y - 9, x + 12, y + 1), fill);
            canvas.DrawText(s.Name, x + 18, y, SKTextAlign.Left, font, ink);
        }
        float reserved = panel.Reference is { } r ? font.MeasureText(r.Label) + 44 : 0;
        float rowWidth = panel.Series.Sum(s => 18 + font.MeasureText(s.Name) + 14);
        if (rowWidth <= plot.Width - reserved)
        {
            float x = plot.Left;
            foreach (var s in panel.Series)
            {
                Entry(s, x, plot.Top - 6);
                x += 18 + font.MeasureText(s.Name) + 14;
            }
            return;
        }
        float ly = plot.Top + 14;
        foreach (var s in panel.Series)
        {
            Entry(s, plot.Right - 150, ly);
            ly += 16;
        }
    }
}
