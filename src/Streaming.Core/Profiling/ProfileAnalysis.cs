using System.Globalization;
using System.Text;
using System.Text.Json.Serialization;

using Streaming.Core.Dataflow;

namespace Streaming.Core.Profiling;

/// <summary>One stage over the measured window: throughput and the share of its time busy, blocked on its output and starved for input.</summary>
public sealed record StageSummary(
    [property: JsonPropertyName("stage")] string Stage,
    [property: JsonPropertyName("workers")] int Workers,
    [property: JsonPropertyName("items_per_s")] double ItemsPerSecond,
    [property: JsonPropertyName("busy")] double Busy,
    [property: JsonPropertyName("blocked")] double Blocked,
    [property: JsonPropertyName("starved")] double Starved,
    [property: JsonPropertyName("mean_queue")] double MeanQueue);

/// <summary>What a profile says: stages ranked by utilization, the bottleneck, the headroom, and the process's resources.</summary>
public sealed record ProfileVerdict(
    [property: JsonPropertyName("window_s")] double WindowSeconds,
    [property: JsonPropertyName("images_per_s")] double ImagesPerSecond,
    [property: JsonPropertyName("stages")] IReadOnlyList<StageSummary> Ranked,
    [property: JsonPropertyName("bottleneck")] string Bottleneck,
    [property: JsonPropertyName("cpu_cores_used")] double CoresUsed,
    [property: JsonPropertyName("cores")] int Cores,
    [property: JsonPropertyName("peak_rss_bytes")] long PeakRss,
    [property: JsonPropertyName("gc_pause_fraction")] double GcPauseFraction,
    [property: JsonPropertyName("headroom")] double Headroom,
    [property: JsonPropertyName("next_bottleneck")] string? NextBottleneck,
    [property: JsonPropertyName("text")] string Text);

/// <summary>
/// Turns samples into a verdict. The window skips the warm-up (the first 10% of the run, at least the first
/// sample); utilization is busy time over wall time times workers. The bottleneck is the most utilized stage.
/// Headroom: a stage at utilization u passes at most throughput / u, so if the bottleneck became infinitely fast
/// the next most utilized stage would cap the gain at 1 / u_next.
/// </summary>
public static class ProfileAnalysis
{
    /// <summary>The stages that count images through their graph: images scored, or images trained on.</summary>
    public static readonly string[] ThroughputStages = ["infer", "train"];

    /// <summary>The stages that run the model.</summary>
    private static bool IsModel(string stage) => ThroughputStages.Contains(stage);

    public static ProfileVerdict Analyse(IReadOnlyList<ProfileSample> samples, int? cores = null)
    {
        if (samples.Count < 2) throw new ArgumentException("a profile needs at least two samples; run it longer");
        double total = samples[^1].T - samples[0].T;
        var first = samples.FirstOrDefault(s => s.T - samples[0].T >= total * 0.1 && s != samples[^1]) ?? samples[0];
        var last = samples[^1];
        double window = Math.Max(1e-9, last.T - first.T);
        var window_samples = samples.Where(s => s.T >= first.T).ToList();
        var summaries = new List<StageSummary>();
        for (int i = 0; i < last.Stages.Count; i++)
        {
            var a = first.Stages[i];
            var b = last.Stages[i];
            double wall = window * b.Workers;
            summaries.Add(new StageSummary(b.Stage, b.Workers, (b.ItemsOut - a.ItemsOut) / window,
                Clamp((b.Busy - a.Busy) / wall), Clamp((b.Blocked - a.Blocked) / wall), Clamp((b.Starved - a.Starved) / wall),
                window_samples.Average(s => s.Stages[i].Queue)));
        }
        var ranked = summaries.OrderByDescending(s => s.Busy).ThenBy(s => s.Stage, StringComparer.Ordinal).ToList();
        var infer = summaries.FirstOrDefault(s => IsModel(s.Stage));
        double images = infer?.ItemsPerSecond ?? ranked[0].ItemsPerSecond;
        int n = cores ?? Environment.ProcessorCount;
        double coresUsed = (last.CpuSeconds - first.CpuSeconds) / window;
        double gc = (last.GcPauseSeconds - first.GcPauseSeconds) / window;
        var bottleneck = ranked[0];
        var next = ranked.Skip(1).FirstOrDefault(s => s.Busy > 0);
        double headroom = next is null ? double.PositiveInfinity : 1 / next.Busy;
        return new ProfileVerdict(window, images, ranked, bottleneck.Stage, coresUsed, n, samples.Max(s => s.Rss), gc,
            headroom, next?.Stage, Explain(bottleneck, next, images, coresUsed, n, gc));
    }

    private static double Clamp(double x) => Math.Clamp(x, 0, 1);

    private static string Explain(StageSummary bottleneck, StageSummary? next, double images, double coresUsed, int cores, double gc)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        string P(double x) => (x * 100).ToString("F0", inv) + "%";
        sb.Append(inv, $"{bottleneck.Stage} is the bottleneck: busy {P(bottleneck.Busy)}");
        if (next is not null) sb.Append(inv, $", {next.Stage} {P(next.Busy)}");
        sb.Append(inv, $"; {images:N0} images/s.");
        bool cpuBound = coresUsed >= cores * 0.9;
        if (bottleneck.Stage == "decode")
        {
            if (cpuBound)
                sb.Append(inv, $" The CPU is saturated ({coresUsed:F1} of {cores} cores): more decode workers only take cores from the other stages; more cores would help.");
            else
                sb.Append(inv, $" Adding decode workers (now {bottleneck.Workers}) helps while cores are free ({coresUsed:F1} of {cores} used).");
        }
        else
        {
            sb.Append(" Adding decode workers gains nothing: decode is not the limit.");
            if (bottleneck.Stage == "infer")
                sb.Append(inv, $" A faster model (a GPU, a smaller model, more threads) gains");
            else if (bottleneck.Stage == "train")
                sb.Append(inv, $" A faster training step (a GPU, a smaller model, more threads) gains");
            else
                sb.Append(inv, $" Speeding up {bottleneck.Stage} gains");
            if (next is null) sb.Append(" without a limit in sight from the other stages.");
            else sb.Append(inv, $" up to {1 / next.Busy:F1}x, until {next.Stage} saturates at about {images / next.Busy:N0} images/s.");
            if (cpuBound) sb.Append(inv, $" The CPU is saturated ({coresUsed:F1} of {cores} cores): on this machine stages share cores, so a gain in one costs the others.");
        }
        if (gc > 0.05) sb.Append(inv, $" GC pauses take {P(gc)} of the time.");
        return sb.ToString();
    }

    /// <summary>The console table: stages ranked by utilization.</summary>
    public static string Table(ProfileVerdict v)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine("  stage     workers   items/s    busy  blocked  starved  mean queue");
        foreach (var s in v.Ranked)
            sb.AppendLine(string.Create(inv, $"  {s.Stage,-8} {s.Workers,7} {s.ItemsPerSecond,9:N0} {s.Busy,7:P0} {s.Blocked,8:P0} {s.Starved,8:P0} {s.MeanQueue,11:F1}"));
        sb.AppendLine(string.Create(inv, $"  CPU {v.CoresUsed:F2} of {v.Cores} cores; peak RSS {v.PeakRss >> 20} MB; GC pauses {v.GcPauseFraction:P1} of the time; window {v.WindowSeconds:F1} s"));
        sb.Append("  verdict: ").AppendLine(v.Text);
        return sb.ToString();
    }
}
