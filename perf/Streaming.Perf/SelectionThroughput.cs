using System.Diagnostics;
using Streaming.Core;
using Streaming.Core.Selection;

namespace Streaming.Perf;

/// <summary>
/// The selection core on synthetic score rows (C classes, P classes a row, K a class): rows/s on one
/// core and resident memory as the row count grows. Ids are made once per row (their cost is part of
/// the figure); probabilities come from a fixed-seed generator, so every run sees the same stream.
/// </summary>
internal static class SelectionThroughput
{
    public static void Run(string[] args)
    {
        long rows = args.Length > 0 ? long.Parse(args[0]) : 10_000_000;
        int classes = args.Length > 1 ? int.Parse(args[1]) : 1000;
        int k = args.Length > 2 ? int.Parse(args[2]) : 16_000;
        int p = args.Length > 3 ? int.Parse(args[3]) : 10;
        var selector = new Selector(classes, k, p);
        var rng = new SplitMix64(42);
        var cls = new int[p];
        var probs = new float[p];
        var clock = Stopwatch.StartNew();
        long reportEvery = Math.Max(1, rows / 20);
        Console.WriteLine($"rows={rows:N0} C={classes} K={k:N0} P={p}");
        Console.WriteLine("rows_done,seconds,rows_per_s_window,rss_mb");
        var window = Stopwatch.StartNew();
        for (long i = 0; i < rows; i++)
        {
            // A peaked distribution over P distinct classes, like a teacher's softmax.
            int c0 = rng.NextInt(classes);
            float rest = 1f;
            for (int j = 0; j < p; j++)
            {
                cls[j] = (c0 + j * 7919) % classes;
                float v = j == p - 1 ? rest : rest * (float)(0.3 + 0.6 * rng.NextDouble());
                probs[j] = v;
                rest -= v;
            }
            selector.Offer("u" + i.ToString(System.Globalization.CultureInfo.InvariantCulture), cls, probs);
            if ((i + 1) % reportEvery == 0)
            {
                double rate = reportEvery / window.Elapsed.TotalSeconds;
                window.Restart();
                Console.WriteLine($"{i + 1},{clock.Elapsed.TotalSeconds:F1},{rate:F0},{Environment.WorkingSet / (1 << 20)}");
            }
        }
        Console.WriteLine($"total: {rows:N0} rows in {clock.Elapsed.TotalSeconds:F1} s = {rows / clock.Elapsed.TotalSeconds:N0} rows/s; peak working set {Process.GetCurrentProcess().PeakWorkingSet64 / (1 << 20):N0} MB");
    }
}
