using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Streaming.Core;
using Streaming.Core.Selection;
using Streaming.Core.Dataflow;
using Streaming.Models.Teachers;
using Streaming.Engine.Scoring;

namespace Streaming.Perf;

/// <summary>
/// The selection core on synthetic score rows (C classes, P classes a row, K a class).
/// <para>
/// <c>select [rows C K P]</c>: a producer thread makes columnar batches of rows (string ids, as a shard
/// reader hands them over, and a peaked softmax-like distribution over P distinct classes from a fixed-seed
/// generator, so every run sees the same stream); the selector consumes them on one core. Reported: the
/// core's rows/s (time inside <see cref="Selector.Offer(ScoreBatch)"/>), the wall rate, and the working set
/// as rows grow.
/// </para>
/// <para>
/// <c>select-shards [rows C K P DIR]</c>: writes the same rows as Parquet score shards of 1M rows with a
/// <c>scoring.json</c> (once; reused when present), then times <see cref="SelectFromScores"/>, which is
/// what <c>streaming select</c> runs.
/// </para>
/// </summary>
internal static class SelectionThroughput
{
    private const int BatchRows = 65_536;

    /// <summary>Rows in columns, with ids as characters in one buffer: a producer refills it, so nothing is allocated per row.</summary>
    private sealed class RowBuffer(int rows, int p)
    {
        public readonly char[] IdChars = new char[rows * 24];
        public readonly int[] IdEnds = new int[rows];
        public readonly int[] Classes = new int[rows * p];
        public readonly float[] Probs = new float[rows * p];
        public int Count;
    }

    public static void Run(string[] args)
    {
        long rows = args.Length > 0 ? long.Parse(args[0], CultureInfo.InvariantCulture) : 10_000_000;
        int classes = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 1000;
        int k = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 16_000;
        int p = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 10;
        var selector = new Selector(classes, k, p);
        // Two threads, two cores: the generator fills buffers on one, the selector drains them on the other.
        using var free = new BlockingCollection<RowBuffer>();
        using var full = new BlockingCollection<RowBuffer>();
        for (int i = 0; i < 4; i++) free.Add(new RowBuffer(BatchRows, p));
        var producer = new Thread(() =>
        {
            for (long start = 0; start < rows; start += BatchRows)
            {
                var buffer = free.Take();
                Fill(buffer, start, (int)Math.Min(BatchRows, rows - start), classes, p);
                full.Add(buffer);
            }
            full.CompleteAdding();
        }) { IsBackground = true, Name = "synthetic rows" };
        Console.WriteLine($"rows={rows:N0} C={classes} K={k:N0} P={p}");
        Console.WriteLine("rows_done,seconds,core_rows_per_s_window,rss_mb");
        var wall = Stopwatch.StartNew();
        producer.Start();
        long done = 0, reportEvery = Math.Max(BatchRows, rows / 20 / BatchRows * BatchRows), nextReport = reportEvery;
        var core = new Stopwatch();
        double windowCore = 0;
        long rssEarly = 0;
        foreach (var buffer in full.GetConsumingEnumerable())
        {
            double before = core.Elapsed.TotalSeconds;
            core.Start();
            int idStart = 0;
            for (int i = 0; i < buffer.Count; i++)
            {
                int idEnd = buffer.IdEnds[i];
                selector.Offer(buffer.IdChars.AsSpan(idStart, idEnd - idStart), buffer.Classes.AsSpan(i * p, p), buffer.Probs.AsSpan(i * p, p));
                idStart = idEnd;
            }
            core.Stop();
            windowCore += core.Elapsed.TotalSeconds - before;
            done += buffer.Count;
            free.Add(buffer);
            if (done >= nextReport || done == rows)
            {
                long rss = Environment.WorkingSet;
                if (rssEarly == 0 && done >= rows / 20) rssEarly = rss;
                Console.WriteLine($"{done},{wall.Elapsed.TotalSeconds:F1},{(done - (nextReport - reportEvery)) / windowCore:F0},{rss >> 20}");
                windowCore = 0;
                nextReport += reportEvery;
            }
        }
        double coreSeconds = core.Elapsed.TotalSeconds, wallSeconds = wall.Elapsed.TotalSeconds;
        long rssEnd = Environment.WorkingSet;
        var result = Stopwatch.StartNew();
        var kept = selector.Result().Sum(r => r.Ranked.Length);
        Console.WriteLine($"total: {rows:N0} rows; core {coreSeconds:F1} s = {rows / coreSeconds:N0} rows/s; wall {wallSeconds:F1} s = {rows / wallSeconds:N0} rows/s; " +
                          $"ranking the {kept:N0} kept {result.Elapsed.TotalSeconds:F1} s; working set at 5% of rows {rssEarly >> 20:N0} MB, after the last row {rssEnd >> 20:N0} MB, " +
                          $"peak {Process.GetCurrentProcess().PeakWorkingSet64 >> 20:N0} MB");
    }

    /// <summary>Fills <paramref name="b"/> with rows start .. start + n (the same rows as <see cref="MakeBatch"/>).</summary>
    private static void Fill(RowBuffer b, long start, int n, int classes, int p)
    {
        int at = 0;
        for (int i = 0; i < n; i++)
        {
            long row = start + i;
            b.IdChars[at++] = 'u';
            row.TryFormat(b.IdChars.AsSpan(at), out int written, default, CultureInfo.InvariantCulture);
            at += written;
            b.IdEnds[i] = at;
            Scores(row, classes, b.Classes.AsSpan(i * p, p), b.Probs.AsSpan(i * p, p));
        }
        b.Count = n;
    }

    /// <summary>
    /// Row <paramref name="row"/>'s scores: a peaked distribution over P distinct classes, like a teacher's
    /// softmax, each ratio drawn from 21 bits of a generator seeded by the row, so any slice is the same rows;
    /// sorted into descending order, as a teacher's top P is.
    /// </summary>
    private static void Scores(long row, int classes, Span<int> cls, Span<float> probs)
    {
        var rng = new SplitMix64(Streaming.Core.StableHash.Mix((ulong)row + 42));
        int p = cls.Length;
        int c0 = rng.NextInt(classes);
        float rest = 1f;
        ulong bits = 0;
        for (int j = 0; j < p; j++)
        {
            if (j % 3 == 0) bits = rng.NextUInt64();
            cls[j] = (c0 + j * 7919) % classes;
            float v = j == p - 1 ? rest : rest * (0.3f + 0.6f * ((bits & 0x1FFFFF) / 2097152f));
            bits >>= 21;
            probs[j] = v;
            rest -= v;
        }
        // A teacher's top P comes in descending probability (the score shard format requires it).
        for (int j = 1; j < p; j++)
            for (int i = j; i > 0 && probs[i] > probs[i - 1]; i--)
                (probs[i], probs[i - 1]) = (probs[i - 1], probs[i]);
    }

    public static async Task<int> RunShardsAsync(string[] args)
    {
        long rows = args.Length > 0 ? long.Parse(args[0], CultureInfo.InvariantCulture) : 20_000_000;
        int classes = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 1000;
        int k = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 16_000;
        int p = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 10;
        string dir = args.Length > 4 ? args[4] : Path.Combine(RepoPaths.Root, "out", $"synthetic-scores-{rows}-{classes}-{p}");
        const long shardRows = 1_000_000;
        if (!File.Exists(Path.Combine(dir, ScoringManifest.FileName)))
        {
            Console.WriteLine($"writing {rows:N0} synthetic score rows to {dir} ...");
            Directory.CreateDirectory(Path.Combine(dir, ScoringManifest.ScoresFolder));
            var shards = new List<ScoredShard>();
            for (long s = 0; s * shardRows < rows; s++)
            {
                var list = new List<ScoreRow>();
                for (long start = s * shardRows; start < Math.Min(rows, (s + 1) * shardRows); start += BatchRows)
                {
                    var b = MakeBatch(start, (int)Math.Min(BatchRows, Math.Min(rows, (s + 1) * shardRows) - start), classes, p);
                    for (int i = 0; i < b.Count; i++) list.Add(b.Row(i));
                }
                string file = Path.Combine(ScoringManifest.ScoresFolder, $"part-{s:D5}.scores.parquet");
                await ScoreShards.WriteAsync(Path.Combine(dir, file), list);
                shards.Add(new ScoredShard($"synthetic-{s:D5}", file, list.Count, 0, Hashing.Sha256File(Path.Combine(dir, file))));
            }
            var manifest = new ScoringManifest
            {
                Teacher = "synthetic", Dataset = "synthetic", TopP = p, Batch = BatchRows,
                Classes = Enumerable.Range(0, classes).Select(c => $"class{c}").ToList(), Shards = shards,
            };
            await File.WriteAllTextAsync(Path.Combine(dir, ScoringManifest.FileName), JsonSerializer.Serialize(manifest));
        }
        // The reading alone, for the breakdown: every shard's row groups decoded into columns, nothing selected.
        var read = Stopwatch.StartNew();
        long readRows = 0;
        foreach (var file in Directory.GetFiles(Path.Combine(dir, ScoringManifest.ScoresFolder), "*.parquet").Order())
            await foreach (var batch in ScoreShards.ReadBatchesAsync(file)) readRows += batch.Count;
        Console.WriteLine($"reading alone: {readRows:N0} rows in {read.Elapsed.TotalSeconds:F1} s = {readRows / read.Elapsed.TotalSeconds:N0} rows/s");
        string outDir = Path.Combine(dir, "selection-bench");
        var clock = Stopwatch.StartNew();
        var result = await SelectFromScores.RunAsync(dir, k, p, outDir);
        clock.Stop();
        Console.WriteLine($"select from {result.ScoreShards.Count} score shards: {rows:N0} rows in {clock.Elapsed.TotalSeconds:F1} s = {rows / clock.Elapsed.TotalSeconds:N0} rows/s " +
                          $"(C={classes}, K={k:N0}, P={p}; includes hashing the shards and writing D-hat); peak working set {Process.GetCurrentProcess().PeakWorkingSet64 >> 20:N0} MB");
        return 0;
    }

    /// <summary>Rows <paramref name="start"/> .. start + n: row i's generator is seeded by i, so any slice is the same rows.</summary>
    private static ScoreBatch MakeBatch(long start, int n, int classes, int p)
    {
        var ids = new string[n];
        var offsets = new int[n + 1];
        var cls = new int[n * p];
        var probs = new float[n * p];
        for (int i = 0; i < n; i++)
        {
            long row = start + i;
            ids[i] = "u" + row.ToString(CultureInfo.InvariantCulture);
            offsets[i] = i * p;
            Scores(row, classes, cls.AsSpan(i * p, p), probs.AsSpan(i * p, p));
        }
        offsets[n] = n * p;
        return new ScoreBatch(ids, offsets, cls, probs);
    }
}
