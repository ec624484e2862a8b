using System.Text.Json;
using Streaming.Core.Plots;

namespace Streaming.Models.Training;

/// <summary>A run's <c>curves.png</c>, drawn from its <c>metrics.jsonl</c>.</summary>
internal static class TrainingCurves
{
    /// <summary>Training loss and evaluation accuracy against images processed.</summary>
    public static void Draw(string metricsPath, string pngPath, string title)
    {
        var train = new List<(double, double)>();
        var top1 = new List<(double, double)>();
        var lrs = new List<(double, double)>();
        foreach (var line in File.ReadLines(metricsPath))
        {
            using var doc = JsonDocument.Parse(line);
            var e = doc.RootElement;
            double images = e.GetProperty("images").GetInt64();
            if (e.GetProperty("type").GetString() == "train")
            {
                train.Add((images, e.GetProperty("loss").GetDouble()));
                lrs.Add((images, e.GetProperty("lr").GetDouble()));
            }
            else top1.Add((images, 100 * e.GetProperty("top1").GetDouble()));
        }
        var panels = new List<Panel>
        {
            new($"{title}: training loss", "images processed", "cross-entropy (smoothed)", [new Series("train loss", train, LinePlot.Palette[0])], LogY: true),
            new("learning rate", "images processed", "lr", [new Series("lr", lrs, LinePlot.Palette[2])]),
        };
        if (top1.Count > 0) panels.Insert(1, new Panel("evaluation accuracy", "images processed", "top-1 (%)", [new Series("top-1", top1, LinePlot.Palette[1])]));
        LinePlot.Save(pngPath, panels);
    }
}
