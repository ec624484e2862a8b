using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using SkiaSharp;
using Streaming.Core.Plots;

using Streaming.Core.Dataflow;

namespace Streaming.Core.Profiling;

/// <summary>One value of a swept knob and what it gave.</summary>
public sealed record SweepPoint(string Knob, double Value, ProfileVerdict Verdict);

/// <summary>
/// The report folder of a profile: <c>profile.json</c> (settings, verdict, every sample), <c>throughput.png</c>
/// (items/s per stage over time), <c>utilization.png</c> (stacked busy / blocked / starved per stage),
/// <c>queues.png</c> (queue depth per stage over time), <c>resources.png</c> (CPU cores and RSS over time),
/// <c>sweep.png</c> for a sweep, and <c>index.html</c> that shows them with the verdict and the table.
/// </summary>
public static class ProfileReport
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static void Write(string folder, object settings, IReadOnlyList<ProfileSample> samples, ProfileVerdict verdict, IReadOnlyList<SweepPoint>? sweep = null)
    {
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "profile.json"), JsonSerializer.Serialize(new { engine = BuildInfo.Current, settings, verdict, sweep = sweep?.Select(p => new { knob = p.Knob, value = p.Value, verdict = p.Verdict }), samples },
            new JsonSerializerOptions { WriteIndented = false }) + "\n");
        var stages = samples[^1].Stages.Select(s => s.Stage).ToList();
        SKColor Color(int i) => LinePlot.Palette[i % LinePlot.Palette.Length];

        // Rates between consecutive samples, smoothed over 0.5 s so a 100 ms sample is not all noise.
        List<(double X, double Y)> Rate(Func<ProfileSample, double> value)
        {
            var points = new List<(double, double)>();
            int j = 0;
            for (int i = 1; i < samples.Count; i++)
            {
                while (j < i - 1 && samples[i].T - samples[j + 1].T >= 0.5) j++;
                double dt = samples[i].T - samples[j].T;
                if (dt > 0) points.Add((samples[i].T, (value(samples[i]) - value(samples[j])) / dt));
            }
            return points;
        }

        LinePlot.Save(Path.Combine(folder, "throughput.png"),
        [
            new Panel("Throughput per stage", "time (s)", "items / s",
                stages.Select((name, i) => new Series(name, Rate(s => s.Stages[i].ItemsOut), Color(i))).ToList()),
        ]);
        LinePlot.Save(Path.Combine(folder, "queues.png"),
        [
            new Panel("Queue depth at each stage's input", "time (s)", "items queued",
                stages.Select((name, i) => new Series(name, samples.Select(s => (s.T, (double)s.Stages[i].Queue)).ToList(), Color(i))).ToList()),
        ]);
        LinePlot.Save(Path.Combine(folder, "resources.png"),
        [
            new Panel("Process CPU", "time (s)", "cores busy", [new Series("CPU", Rate(s => s.CpuSeconds), Color(0)),
                new Series($"cores ({verdict.Cores})", [(samples[0].T, verdict.Cores), (samples[^1].T, verdict.Cores)], Color(3))]),
            new Panel("Resident memory", "time (s)", "RSS (MB)", [new Series("RSS", samples.Select(s => (s.T, s.Rss / 1048576.0)).ToList(), Color(1))]),
        ]);
        var order = verdict.Ranked.Select(r => r.Stage).ToList();
        BarPlot.Save(Path.Combine(folder, "utilization.png"),
        [
            new BarPanel($"Where each stage's time goes (ranked; bottleneck: {verdict.Bottleneck})", "% of wall time x workers", order,
            [
                new BarSeries("busy", verdict.Ranked.Select(r => (double?)(r.Busy * 100)).ToList(), new SKColor(214, 39, 40)),
                new BarSeries("blocked on output", verdict.Ranked.Select(r => (double?)(r.Blocked * 100)).ToList(), new SKColor(255, 127, 14)),
                new BarSeries("starved for input", verdict.Ranked.Select(r => (double?)(r.Starved * 100)).ToList(), new SKColor(31, 119, 180)),
            ], YMax: 100, Stacked: true),
        ], width: 720);
        if (sweep is { Count: > 0 })
        {
            string knob = sweep[0].Knob;
            LinePlot.Save(Path.Combine(folder, "sweep.png"),
            [
                new Panel($"Throughput against {knob}", knob, "images / s", [new Series("images/s", sweep.Select(p => (p.Value, p.Verdict.ImagesPerSecond)).ToList(), Color(0))]),
                new Panel($"Utilization against {knob}", knob, "busy (%)",
                    stages.Select((name, i) => new Series(name, sweep.Select(p => (p.Value, p.Verdict.Ranked.First(r => r.Stage == name).Busy * 100)).ToList(), Color(i))).ToList()),
            ]);
        }
        File.WriteAllText(Path.Combine(folder, "index.html"), Html(settings, verdict, sweep));
    }

    private static string Html(object settings, ProfileVerdict v, IReadOnlyList<SweepPoint>? sweep)
    {
        string E(string s) => WebUtility.HtmlEncode(s);
        var sb = new StringBuilder();
        sb.Append("<!doctype html><html><head><meta charset=\"utf-8\"><title>streaming profile</title><style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
            + "table{border-collapse:collapse}td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}th:first-child,td:first-child{text-align:left}"
            + ".verdict{font-size:1.15em;background:#f4f4f4;padding:12px;border-left:4px solid #d62728}img{max-width:100%;margin:8px 0}</style></head><body>");
        sb.Append("<h1>Profile</h1><p class=\"verdict\">").Append(E(v.Text)).Append("</p>");
        sb.Append("<h2>Stages, ranked by utilization</h2><table><tr><th>stage</th><th>workers</th><th>items/s</th><th>busy</th><th>blocked on output</th><th>starved for input</th><th>mean queue</th></tr>");
        foreach (var s in v.Ranked)
            sb.Append(Inv, $"<tr><td>{E(s.Stage)}</td><td>{s.Workers}</td><td>{s.ItemsPerSecond:N0}</td><td>{s.Busy:P0}</td><td>{s.Blocked:P0}</td><td>{s.Starved:P0}</td><td>{s.MeanQueue:F1}</td></tr>");
        sb.Append(Inv, $"</table><p>CPU {v.CoresUsed:F2} of {v.Cores} cores; peak RSS {v.PeakRss >> 20} MB; GC pauses {v.GcPauseFraction:P1} of the time; measured over {v.WindowSeconds:F1} s after warm-up.</p>");
        foreach (var (img, alt) in new[] { ("utilization.png", "busy, blocked and starved time per stage"), ("throughput.png", "throughput per stage over time"),
                     ("queues.png", "queue depths over time"), ("resources.png", "CPU and memory over time") })
            sb.Append($"<img src=\"{img}\" alt=\"{alt}\">");
        if (sweep is { Count: > 0 })
        {
            sb.Append("<h2>Sweep</h2><table><tr><th>").Append(E(sweep[0].Knob)).Append("</th><th>images/s</th><th>bottleneck</th></tr>");
            foreach (var p in sweep) sb.Append(Inv, $"<tr><td>{p.Value}</td><td>{p.Verdict.ImagesPerSecond:N0}</td><td>{E(p.Verdict.Bottleneck)}</td></tr>");
            sb.Append("</table><img src=\"sweep.png\" alt=\"throughput against the swept knob\">");
        }
        sb.Append("<h2>Settings</h2><pre>").Append(E(JsonSerializer.Serialize(settings, new JsonSerializerOptions { WriteIndented = true }))).Append("</pre></body></html>\n");
        return sb.ToString();
    }
}
