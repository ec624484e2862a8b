using SkiaSharp;
using Streaming.Core.Plots;
using Xunit;

namespace Streaming.Tests;

public class PlotTests
{
    [Fact]
    public void LinePlot_DrawsBars_AndWidensTheAxisToHoldThem()
    {
        using var dir = new TempDir();
        string png = dir.Sub("bars.png");
        var color = LinePlot.Palette[0];
        // A line from y = 1 to 2 with a bar from 0 to 10 at its middle: the axis must reach 10, and the bar's top is drawn there.
        var series = new Series("mean", [(1.0, 1.0), (2.0, 2.0)], color, [(1.5, 0.0, 10.0)]);
        LinePlot.Save(png, [new Panel("bars", "x", "y", [series])], panelWidth: 520, height: 380);
        using var bitmap = SKBitmap.Decode(png);
        // The plot spans x 70..500 and y 36..330 in a 520x380 panel; its middle column is x = 285.
        bool Colored(int x, int y) => bitmap.GetPixel(x, y) is var p && Math.Abs(p.Red - color.Red) < 40 && Math.Abs(p.Green - color.Green) < 40 && Math.Abs(p.Blue - color.Blue) < 40;
        int top = Enumerable.Range(36, 294).First(y => Enumerable.Range(283, 5).Any(x => Colored(x, y)));
        int bottom = Enumerable.Range(36, 294).Last(y => Enumerable.Range(283, 5).Any(x => Colored(x, y)));
        // Without the bar the column would hold only the line's crossing, near the bottom.
        Assert.InRange(top, 36, 70);
        Assert.InRange(bottom, 290, 330);
    }
}
