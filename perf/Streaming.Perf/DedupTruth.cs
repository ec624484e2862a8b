using System.Diagnostics;
using System.Globalization;
using System.Text;
using Streaming.Core.Datasets;
using Streaming.Core.Decode;
using Streaming.Core.Plots;
using Streaming.Core.Shards;
using Streaming.Engine.Dedup;
using TorchSharp;
using static TorchSharp.torch;

namespace Streaming.Perf;

/// <summary>
/// <c>dedup-truth DATA AGAINST OUT [MODEL]</c>: dedup measured against the truth (issue 32, item 0).
/// <list type="number">
/// <item>The exact reference: every image of DATA against every image of AGAINST by the RMS of their pixel difference (of
/// 255), a chunked matrix product (|a|^2 + |b|^2 - 2ab), the pairs under the loose bound then recomputed exactly in
/// integers. Writes <c>truth.csv</c>: every pair within RMS 25.</item>
/// <item>The detector: <see cref="Deduplicator.RunAsync"/> as <c>streaming dedup</c> runs it, with its final threshold wide
/// open (the cells' RMS; for the embedding kind the cosine), so that each image of DATA is reported with its nearest
/// candidate of AGAINST and the distance by which it was found. A threshold t then reports the pairs at distance up to t
/// (the nearest does not depend on t).</item>
/// <item>The variants tried: the dHash alone at several bit thresholds (the detector before), and dHash candidates checked
/// by thumbnails of three sizes.</item>
/// <item>The curve, for each kind: at each threshold, recall = the share of DATA's images with an AGAINST image within RMS
/// 10 (visually identical) that are reported, precision = the share of reported pairs within RMS 25. Writes
/// <c>curve-KIND.csv</c> and prints the table.</item>
/// </list>
/// </summary>
internal static class DedupTruth
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    public const double Identical = 10, Close = 25;

    private sealed record Images(string[] Ids, byte[] Luma, int Width, int Height)
    {
        public int Count => Ids.Length;
        public int Pixels => Width * Height;
        public ReadOnlySpan<byte> Of(int i) => Luma.AsSpan(i * Pixels, Pixels);
    }

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length < 3)
        {
            Console.Error.WriteLine("usage: dedup-truth DATA AGAINST OUT [MODEL]   (image datasets of equal image size; MODEL adds the embedding kind)");
            return 2;
        }
        string data = args[0], against = args[1], output = args[2];
        string? model = args.Length > 3 ? args[3] : null;
        Directory.CreateDirectory(output);
        var clock = Stopwatch.StartNew();
        var u = await LoadAsync(data);
        var a = await LoadAsync(against);
        if (u.Width != a.Width || u.Height != a.Height) throw new InvalidOperationException($"{data} is {u.Width}x{u.Height}, {against} is {a.Width}x{a.Height}: the pixel distance needs one size");
        Console.WriteLine(string.Create(Inv, $"decoded {u.Count:N0} + {a.Count:N0} images ({u.Width}x{u.Height}) in {clock.Elapsed.TotalSeconds:F1} s"));

        clock.Restart();
        var truth = ExactPairs(u, a, Close);
        Console.WriteLine(string.Create(Inv, $"exact search: {(double)u.Count * a.Count:N0} pairs in {clock.Elapsed.TotalSeconds:F1} s; {truth.Count:N0} within RMS {Close}"));
        var sb = new StringBuilder("data_id,against_id,rms\n");
        foreach (var (i, j, rms) in truth.OrderBy(t => t.Rms).ThenBy(t => t.I).ThenBy(t => t.J)) sb.Append(Inv, $"{u.Ids[i]},{a.Ids[j]},{rms:F3}\n");
        File.WriteAllText(Path.Combine(output, "truth.csv"), sb.ToString());
        var nearestRms = new double[u.Count];
        Array.Fill(nearestRms, double.PositiveInfinity);
        foreach (var (i, _, rms) in truth) nearestRms[i] = Math.Min(nearestRms[i], rms);
        int positives = nearestRms.Count(r => r <= Identical);
        var againstPositives = truth.Where(t => t.Rms <= Identical).Select(t => t.J).Distinct().Count();
        Console.WriteLine(string.Create(Inv, $"truth: {positives} images of DATA have an AGAINST image within RMS {Identical} ({againstPositives} AGAINST images have one of DATA); {nearestRms.Count(r => r <= Close)} within RMS {Close}"));
        foreach (var (lo, hi) in new[] { (0.0, 2.5), (2.5, 5), (5, 10), (10, 15), (15, 20), (20, 25) })
            Console.WriteLine(string.Create(Inv, $"  nearest RMS in ({lo}, {hi}]: {nearestRms.Count(r => r > lo && r <= hi) + (lo == 0 ? nearestRms.Count(r => r == 0) : 0)}"));

        var before = Variants(u, a, nearestRms, positives);
        var index = a.Ids.Select((id, j) => (id, j)).ToDictionary(p => p.id, p => p.j);
        var uIndex = u.Ids.Select((id, i) => (id, i)).ToDictionary(p => p.id, p => p.i);
        var curves = new List<Series> { before };
        var marks = new List<Series>();
        var kinds = new List<(string Kind, DedupOptions Options)>
        {
            ("perceptual", new DedupOptions { Data = data, Against = [against], Out = Path.Combine(output, "run-perceptual"), MaxCellRms = double.MaxValue, Threads = Environment.ProcessorCount }),
        };
        if (model is not null)
            kinds.Add(("embedding", new DedupOptions { Data = data, Against = [against], Out = Path.Combine(output, "run-embedding"), MaxHamming = 0, Model = model, MinCosine = -1, Threads = Environment.ProcessorCount }));
        foreach (var (kind, options) in kinds)
        {
            clock.Restart();
            var (summary, pairs) = await Deduplicator.RunAsync(options);
            Console.WriteLine(string.Create(Inv, $"\n== {kind}: dedup ran in {clock.Elapsed.TotalSeconds:F1} s (hashing {summary.HashImagesPerSecond:N0} images/s, search {summary.SearchSeconds:F1} s)"));
            // Each reported pair: its distance as found (exact kinds at 0, other kinds than this one left out) and its true RMS.
            var reported = pairs.Where(p => p.Kind is "exact_bytes" or "exact_pixels" || p.Kind == kind)
                .Select(p => (I: uIndex[p.Id], Found: p.Kind == kind ? p.Distance : 0.0, Rms: Rms(u.Of(uIndex[p.Id]), a.Of(index[p.AgainstId])))).OrderBy(p => p.Found).ToList();
            double[] grid = kind == "perceptual"
                ? Enumerable.Range(1, 32).Select(k => k * 0.5).ToArray()
                : [1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2];
            var rows = Curve(reported.Select(p => (p.Found, p.I, p.Rms)).ToList(), grid, nearestRms, positives);
            var csv = new StringBuilder("threshold,reported,within_rms25,precision,found_of_rms10,recall\n");
            Console.WriteLine($"| {(kind == "perceptual" ? $"cells' RMS at most (dHash within {options.MaxHamming} bits)" : "1 - cosine, at most")} | reported | precision (within RMS {Close}) | recall (of {positives} within RMS {Identical}) |");
            Console.WriteLine("| ---: | ---: | ---: | ---: |");
            foreach (var r in rows)
            {
                csv.Append(Inv, $"{r.T},{r.Reported},{r.Close},{r.Precision:F4},{r.Found},{r.Recall:F4}\n");
                Console.WriteLine(string.Create(Inv, $"| {r.T} | {r.Reported:N0} | {r.Precision:F3} | {r.Recall:F3} |"));
            }
            curves.Add(new Series(kind == "perceptual" ? $"dHash <= {options.MaxHamming} bits, then cells' RMS (0.5-16)" : "embedding: 1 - cosine (1e-5 to 0.05)",
                rows.Where(r => r.Reported > 0).Select(r => (r.Recall, r.Precision)).ToList(), LinePlot.Palette[curves.Count % LinePlot.Palette.Length]));
            if (kind == "perceptual" && rows.FirstOrDefault(r => r.T == DedupOptions.DefaultMaxCellRms) is { Reported: > 0 } d)
                marks.Add(new Series($"the default: {options.MaxHamming} bits, cells' RMS {DedupOptions.DefaultMaxCellRms} ({d.Reported} pairs)", [(d.Recall, d.Precision)], LinePlot.Palette[3]));
            File.WriteAllText(Path.Combine(output, $"curve-{kind}.csv"), csv.ToString());
            // The positives it misses at the widest threshold shown, and how far they were found.
            var byI = reported.GroupBy(p => p.I).ToDictionary(g => g.Key, g => g.First());
            var missed = Enumerable.Range(0, u.Count).Where(i => nearestRms[i] <= Identical)
                .Select(i => (Id: u.Ids[i], Rms: nearestRms[i], Found: byI.TryGetValue(i, out var p) ? p.Found : double.NaN)).OrderBy(m => m.Found).ToList();
            Console.WriteLine($"the {positives} positives, by the distance at which {kind} finds them (nearest true RMS in brackets):");
            Console.WriteLine("  " + string.Join(", ", missed.Select(m => string.Create(Inv, $"{m.Found:0.######} ({m.Rms:F1})"))));
        }
        LinePlot.Save(Path.Combine(output, "curve.png"), [new Panel(
            string.Create(Inv, $"dedup against an exact pixel search: {u.Count:N0} images against {a.Count:N0}"),
            $"recall: share of the {positives} images within RMS {Identical} of an image that are found", $"precision: share of pairs within RMS {Close}", [.. curves, .. marks])], 760, 480);
        Console.WriteLine($"\n-> {Path.Combine(output, "truth.csv")}, curve-*.csv, curve.png");
        return 0;
    }

    /// <summary>
    /// The variants tried before the default was chosen: candidates by the 256-bit dHash within H bits, then the nearest by
    /// the RMS of a luma thumbnail (the dHash's own 17 x 16 cells, 14 x 14 and 8 x 8 cells), reported at thumbnail RMS T.
    /// </summary>
    private static Series Variants(Images u, Images a, double[] nearestRms, int positives)
    {
        var hashU = Enumerable.Range(0, u.Count).Select(i => Streaming.Core.Dedup.ImageHash.DifferenceHash(u.Of(i), u.Width, u.Height, true)).ToArray();
        var hashA = Enumerable.Range(0, a.Count).Select(i => Streaming.Core.Dedup.ImageHash.DifferenceHash(a.Of(i), a.Width, a.Height, true)).ToArray();
        var nearestBits = new (int D, int J)[u.Count];
        Parallel.For(0, u.Count, i =>
        {
            int bd = int.MaxValue, bj = -1;
            for (int j = 0; j < a.Count; j++)
            {
                int d = Streaming.Core.Dedup.ImageHash.Distance(hashU[i], hashA[j]);
                if (d < bd) (bd, bj) = (d, j);
            }
            nearestBits[i] = (bd, bj);
        });
        Console.WriteLine("\n== variant: the dHash alone (the detector before), reported within H bits of its nearest dHash");
        Console.WriteLine("| H | reported | precision | recall |\n| ---: | ---: | ---: | ---: |");
        var alone = Curve(Enumerable.Range(0, u.Count).Select(i => ((double)nearestBits[i].D, i, Rms(u.Of(i), a.Of(nearestBits[i].J)))).Where(p => p.Item1 <= 64).ToList(),
            [0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 40, 48, 64], nearestRms, positives);
        foreach (var r in alone) Console.WriteLine(string.Create(Inv, $"| {r.T} | {r.Reported:N0} | {r.Precision:F3} | {r.Recall:F3} |"));
        Console.WriteLine("\n== variants: dHash candidates within H bits, the nearest by a thumbnail's RMS, reported at thumbnail RMS T (precision P, recall R)");
        foreach (var (gw, gh) in new[] { (17, 16), (14, 14), (8, 8) })
        {
            int n = gw * gh;
            byte[] Thumbs(Images im)
            {
                var t = new byte[im.Count * n];
                Parallel.For(0, im.Count, i => Grid(im.Of(i), im.Width, im.Height, gw, gh, t.AsSpan(i * n, n)));
                return t;
            }
            var tu = Thumbs(u);
            var ta = Thumbs(a);
            var (hu, ha) = (hashU, hashA);
            foreach (int maxH in new[] { 16, 24, 40, 64 })
            {
                var clock = Stopwatch.StartNew();
                var best = new (double T, int J)[u.Count];
                long candidates = 0;
                Parallel.For(0, u.Count, () => 0L, (i, _, local) =>
                {
                    double bt = double.MaxValue;
                    int bj = -1;
                    var x = tu.AsSpan(i * n, n);
                    for (int j = 0; j < a.Count; j++)
                    {
                        if (Streaming.Core.Dedup.ImageHash.Distance(hu[i], ha[j]) > maxH) continue;
                        local++;
                        double t = Rms(x, ta.AsSpan(j * n, n));
                        if (t < bt) (bt, bj) = (t, j);
                    }
                    best[i] = (bt, bj);
                    return local;
                }, l => Interlocked.Add(ref candidates, l));
                var line = new StringBuilder(string.Create(Inv, $"{gw}x{gh} cells, H {maxH}: {candidates:N0} candidates, {clock.Elapsed.TotalSeconds:F1} s |"));
                foreach (double T in new[] { 3.0, 5, 7, 8, 9, 10, 12 })
                {
                    int reported = 0, close = 0, found = 0;
                    for (int i = 0; i < u.Count; i++)
                    {
                        if (best[i].J < 0 || best[i].T > T) continue;
                        reported++;
                        if (Rms(u.Of(i), a.Of(best[i].J)) <= Close) close++;
                        if (nearestRms[i] <= Identical) found++;
                    }
                    line.Append(Inv, $" T {T}: {reported} P {(reported == 0 ? 1 : (double)close / reported):F2} R {(double)found / positives:F2} |");
                }
                Console.WriteLine(line);
            }
        }
        return new Series("dHash alone (before; 2 bits was the default): Hamming bits 1-64", alone.Where(r => r.Reported > 0).Select(r => (r.Recall, r.Precision)).ToList(), LinePlot.Palette[0]);
    }

    private static void Grid(ReadOnlySpan<byte> p, int width, int height, int gw, int gh, Span<byte> cells)
    {
        for (int cy = 0; cy < gh; cy++)
        {
            int y0 = cy * height / gh, y1 = Math.Max(y0 + 1, (cy + 1) * height / gh);
            for (int cx = 0; cx < gw; cx++)
            {
                int x0 = cx * width / gw, x1 = Math.Max(x0 + 1, (cx + 1) * width / gw);
                int sum = 0;
                for (int y = y0; y < y1; y++) for (int x = x0; x < x1; x++) sum += p[y * width + x];
                cells[cy * gw + cx] = (byte)((sum + (y1 - y0) * (x1 - x0) / 2) / ((y1 - y0) * (x1 - x0)));
            }
        }
    }

    private readonly record struct Row(double T, int Reported, int Close, double Precision, int Found, double Recall);

    /// <summary>At each threshold: the pairs found at that distance or less, how many lie within RMS 25 (precision), and how many of the positives they hold (recall).</summary>
    private static List<Row> Curve(List<(double Found, int I, double Rms)> reported, double[] thresholds, double[] nearestRms, int positives)
    {
        var rows = new List<Row>();
        foreach (double t in thresholds)
        {
            int n = 0, close = 0, found = 0;
            foreach (var p in reported)
            {
                if (p.Found > t) continue;
                n++;
                if (p.Rms <= Close) close++;
                if (nearestRms[p.I] <= Identical) found++;
            }
            rows.Add(new Row(t, n, close, n == 0 ? 1 : (double)close / n, found, positives == 0 ? 1 : (double)found / positives));
        }
        return rows;
    }

    private static double Rms(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y)
    {
        long sum = 0;
        for (int k = 0; k < x.Length; k++)
        {
            int d = x[k] - y[k];
            sum += d * d;
        }
        return Math.Sqrt((double)sum / x.Length);
    }

    /// <summary>Every pair within <paramref name="bound"/> RMS, exact: float matrix products in chunks find the candidates, integers decide.</summary>
    private static List<(int I, int J, double Rms)> ExactPairs(Images u, Images a, double bound)
    {
        int d = u.Pixels;
        double loose = (bound + 1) * (bound + 1) * d; // float rounding is far below one level of RMS
        var result = new List<(int, int, double)>();
        using var scope = NewDisposeScope();
        var b = tensor(a.Luma, [a.Count, d]).to(float32);
        var bNorm = b.pow(2).sum(1);
        const int Chunk = 4096;
        for (int start = 0; start < u.Count; start += Chunk)
        {
            using var inner = NewDisposeScope();
            int n = Math.Min(Chunk, u.Count - start);
            var x = tensor(u.Luma.AsSpan(start * d, n * d).ToArray(), [n, d]).to(float32);
            var dist = x.pow(2).sum(1).unsqueeze(1) + bNorm.unsqueeze(0) - 2 * x.matmul(b.t());
            var hits = nonzero(dist.le(loose));
            long[] flat = hits.data<long>().ToArray();
            for (int k = 0; k < flat.Length; k += 2)
            {
                int i = start + (int)flat[k], j = (int)flat[k + 1];
                double rms = Rms(u.Of(i), a.Of(j));
                if (rms <= bound) result.Add((i, j, rms));
            }
        }
        return result;
    }

    /// <summary>Every image of a dataset decoded to 8-bit luma, in the dataset's order.</summary>
    private static async Task<Images> LoadAsync(string dataset)
    {
        var manifest = DatasetManifest.Load(dataset);
        var ids = new List<string>();
        var luma = new List<byte[]>();
        int width = 0, height = 0;
        foreach (var shard in manifest.ShardPaths(dataset))
            await foreach (var r in ImageShardReader.ReadAsync(shard))
            {
                var (pixels, w, h) = ImageDecoder.WithPixels(r.Image, 0, static (p, w, h, gray, _) =>
                {
                    var y = new byte[w * h];
                    for (int k = 0; k < y.Length; k++)
                        y[k] = gray ? p[k] : (byte)Math.Round(p[4 * k] * 0.299 + p[4 * k + 1] * 0.587 + p[4 * k + 2] * 0.114);
                    return (y, w, h);
                });
                if (width == 0) (width, height) = (w, h);
                else if (w != width || h != height) throw new InvalidOperationException($"{dataset}: {r.Id} is {w}x{h}, the others {width}x{height}");
                ids.Add(r.Id);
                luma.Add(pixels);
            }
        var all = new byte[luma.Count * width * height];
        for (int i = 0; i < luma.Count; i++) luma[i].CopyTo(all, i * width * height);
        return new Images(ids.ToArray(), all, width, height);
    }
}
