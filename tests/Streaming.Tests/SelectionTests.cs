using CsCheck;
using Streaming.Core.Selection;
using Xunit;

namespace Streaming.Tests;

public class SelectionTests
{
    private static readonly Gen<ScoreRow[]> GenRows =
        Gen.Select(Gen.Int[1, 300], Gen.Int[2, 6]).SelectMany((n, classes) =>
            Gen.Int[0, 4].Array[n * 3].Select(raw =>
            {
                // Scores from a tiny set of values, so ties are everywhere.
                var rows = new ScoreRow[n];
                for (int i = 0; i < n; i++)
                {
                    int c0 = raw[3 * i] % classes, c1 = (c0 + 1 + raw[3 * i + 1] % (classes - 1)) % classes;
                    float p0 = 0.5f + raw[3 * i + 2] * 0.1f, p1 = 1 - p0;
                    rows[i] = new ScoreRow($"img{i % 97:D3}-{i}", [c0, c1], [p0, p1]);
                }
                return rows;
            }));

    /// <summary>The reference: for each class, sort every (score, id) with that class in the image's top P; take K.</summary>
    private static List<(int, string[])> BruteForce(ScoreRow[] rows, int classes, int k, int p)
    {
        var result = new List<(int, string[])>();
        for (int c = 0; c < classes; c++)
        {
            var candidates = rows.SelectMany(r => r.Classes.Take(p).Select((cls, j) => (cls, score: r.Probs[j], r.Id)))
                .Where(x => x.cls == c)
                .OrderByDescending(x => x.score).ThenBy(x => x.Id, StringComparer.Ordinal)
                .Take(k).Select(x => x.Id).ToArray();
            result.Add((c, candidates));
        }
        return result;
    }

    private static void AssertEqualsBruteForce(ScoreRow[] rows, int k, int p, bool offerTwice)
    {
        int classes = rows.Max(r => r.Classes.Max()) + 1;
        var selector = new Selector(classes, k, p);
        foreach (var r in rows) selector.Offer(r);
        if (offerTwice) foreach (var r in rows.Reverse()) selector.Offer(r);
        var expected = BruteForce(rows, classes, k, p).Select(e => $"{e.Item1}: {string.Join(",", e.Item2)}").ToList();
        Assert.Equal(expected, Run(selector));
    }

    private static List<string> Run(Selector s) => s.Result().Select(r => $"{r.Class}: {string.Join(",", r.Ranked.Select(c => c.Id))}").ToList();

    [Fact]
    public void HeapSelection_EqualsABruteForceSort_WithManyTies()
    {
        Gen.Select(GenRows, Gen.Int[1, 40], Gen.Int[1, 2]).Sample(t =>
        {
            var (rows, k, p) = t;
            AssertEqualsBruteForce(rows, k, p, offerTwice: false);
        }, iter: 300);
    }

    /// <summary>
    /// Ids of every shape the UTF-8 id arena and its tie-breaking compare differently: short and long ASCII,
    /// two- and three-byte characters, a supplementary character (a surrogate pair in UTF-16), shared
    /// prefixes; with many rows per class, so buffers are compacted and their ids slid down.
    /// </summary>
    private static readonly Gen<ScoreRow[]> GenOddIdRows =
        Gen.Select(Gen.Int[1, 400], Gen.Int[2, 5]).SelectMany((n, classes) =>
            Gen.Select(Gen.Int[0, 4].Array[n * 3], Gen.Int[0, 5].Array[n]).Select((raw, shapes) =>
            {
                var rows = new ScoreRow[n];
                for (int i = 0; i < n; i++)
                {
                    string id = shapes[i] switch
                    {
                        0 => $"s{i}",
                        1 => $"a-medium-length-id-{i:D5}",
                        2 => new string('x', 70 + i % 5) + i,
                        3 => $"\u4e2d\u6587-{i}",
                        4 => $"caf\u00e9-{i}",
                        _ => $"s{i}\U0001F600",
                    };
                    int c0 = raw[3 * i] % classes, c1 = (c0 + 1 + raw[3 * i + 1] % (classes - 1)) % classes;
                    float p0 = 0.5f + raw[3 * i + 2] * 0.1f;
                    rows[i] = new ScoreRow(id, [c0, c1], [p0, 1 - p0]);
                }
                return rows;
            }));

    [Fact]
    public void HeapSelection_EqualsABruteForceSort_ForIdsOfEveryShape()
    {
        Gen.Select(GenOddIdRows, Gen.Int[1, 25], Gen.Int[1, 2]).Sample(t =>
        {
            var (rows, k, p) = t;
            // Offering everything again changes nothing: an image counts once, whatever its id's shape.
            AssertEqualsBruteForce(rows, k, p, offerTwice: true);
        }, iter: 300);
    }

    /// <summary>
    /// Enough rows that the selector's stage fills and flushes many times mid-stream (so thresholds rise, and
    /// rows stop early at the lowest of them), buffers compact many times (radix select, duplicate merge), with
    /// scores from a few values (ties at every threshold) and ids offered again with other scores.
    /// </summary>
    private static readonly Gen<ScoreRow[]> GenManyRows =
        Gen.Select(Gen.Int[20_000, 60_000], Gen.Int[3, 40], Gen.Int[1, 3], Gen.UInt).Select((n, classes, p, seed) =>
        {
            var rng = new Random((int)seed);
            var rows = new ScoreRow[n];
            for (int i = 0; i < n; i++)
            {
                var cls = Enumerable.Range(0, classes).OrderBy(_ => rng.Next()).Take(p).ToArray();
                var probs = Enumerable.Range(0, p).Select(_ => rng.Next(1, 12) / 12f).OrderDescending().ToArray();
                // One row in ten repeats an earlier image (same id, its own scores): it must count once, at its best.
                string id = i > 0 && rng.Next(10) == 0 ? rows[rng.Next(i)].Id : $"img-{rng.Next(1000)}-{i}";
                rows[i] = new ScoreRow(id, cls, probs);
            }
            return rows;
        });

    /// <summary>The reference with repeated ids: an image's best score for a class is its candidate there.</summary>
    private static List<string> BruteForceBest(ScoreRow[] rows, int classes, int k, int p) =>
        Enumerable.Range(0, classes).Select(c =>
        {
            var ids = rows.SelectMany(r => r.Classes.Take(p).Select((cls, j) => (cls, score: r.Probs[j], r.Id)))
                .Where(x => x.cls == c)
                .GroupBy(x => x.Id).Select(g => (Id: g.Key, Score: g.Max(x => x.score)))
                .OrderByDescending(x => x.Score).ThenBy(x => x.Id, StringComparer.Ordinal)
                .Take(k).Select(x => x.Id);
            return $"{c}: {string.Join(",", ids)}";
        }).ToList();

    [Fact]
    public void HeapSelection_EqualsABruteForceSort_AtScale_WithRepeatedIds()
    {
        Gen.Select(GenManyRows, Gen.Int[1, 800], Gen.Int[64, 2048]).Sample(t =>
        {
            var (rows, k, stage) = t;
            int classes = rows.Max(r => r.Classes.Max()) + 1, p = rows[0].Classes.Length;
            var expected = BruteForceBest(rows, classes, k, p);
            // The default stage, and a small one that flushes every few rows.
            foreach (var selector in new[] { new Selector(classes, k, p), new Selector(classes, k, p, BalanceMode.Ranked, 0, stage) })
            {
                foreach (var r in rows) selector.Offer(r);
                Assert.Equal(expected, Run(selector));
            }
        }, iter: 6);
    }

    [Fact]
    public void Merge_IsAssociativeAndCommutative_AndEqualsTheWhole()
    {
        Gen.Select(GenRows, Gen.Int[1, 20], Gen.Int[0, 1000]).Sample(t =>
        {
            var (rows, k, cutSeed) = t;
            int classes = rows.Max(r => r.Classes.Max()) + 1;
            int a = cutSeed % (rows.Length + 1), b = a + (cutSeed / 7) % (rows.Length - a + 1);
            Selector Part(IEnumerable<ScoreRow> part)
            {
                var s = new Selector(classes, k, 2);
                foreach (var r in part) s.Offer(r);
                return s;
            }
            var whole = Run(Part(rows));
            var x = Part(rows[..a]);
            var y = Part(rows[a..b]);
            var z = Part(rows[b..]);
            // (x + y) + z
            var left = Part([]);
            left.Merge(x); left.Merge(y); left.Merge(z);
            // z + (y + x)
            var yx = Part([]);
            yx.Merge(y); yx.Merge(x);
            var right = Part([]);
            right.Merge(z); right.Merge(yx);
            Assert.Equal(whole, Run(left));
            Assert.Equal(whole, Run(right));
            // Idempotent per image: merging a part twice changes nothing.
            left.Merge(y);
            Assert.Equal(whole, Run(left));
        }, iter: 200);
    }

    [Fact]
    public void Order_OfRows_DoesNotMatter()
    {
        Gen.Select(GenRows, Gen.Int[1, 30]).Sample(t =>
        {
            var (rows, k) = t;
            int classes = rows.Max(r => r.Classes.Max()) + 1;
            var forward = new Selector(classes, k, 2);
            foreach (var r in rows) forward.Offer(r);
            var backward = new Selector(classes, k, 2);
            foreach (var r in rows.Reverse()) backward.Offer(r);
            Assert.Equal(Run(forward), Run(backward));
        }, iter: 100);
    }

    [Fact]
    public void ClassHeap_BreaksTiesOnTheId_CountsAnImageOnce_AndRejectsBelowItsThreshold()
    {
        var heap = new ClassHeap(3);
        Assert.True(heap.Offer(0.9f, "a"));
        Assert.True(heap.Offer(0.8f, "b"));
        Assert.True(heap.Offer(0.7f, "c"));
        heap.Offer(0.6f, "d");
        heap.Offer(0.7f, "d"); // a tie loses to the smaller id already kept
        heap.Offer(0.7f, "b0"); // a tie with a smaller id wins
        Assert.Equal(new[] { "a", "b", "b0" }, heap.Ranked().Select(c => c.Id));
        heap.Offer(0.95f, "a"); // an image counts once, with its best score
        Assert.Equal(new[] { ("a", 0.95f), ("b", 0.8f), ("b0", 0.7f) }, heap.Ranked().Select(c => (c.Id, c.Score)));
        Assert.Equal(3, heap.Count);

        // Once a buffer's worth of candidates forced a compaction, anything below the K-th best is rejected in O(1).
        for (int i = 0; i < 200; i++) heap.Offer(0.5f + i * 0.001f, $"x{i}");
        Assert.Equal(0.7f, heap.Threshold);
        Assert.False(heap.Offer(0.69f, "late"));
        Assert.Equal(new[] { "a", "b", "b0" }, heap.Ranked().Select(c => c.Id));
    }

    [Fact]
    public void Zipf_KeepsTheTotal_AndRandomIsReproducible()
    {
        var rows = Enumerable.Range(0, 2000).Select(i => new ScoreRow($"i{i}", [i % 5, (i + 1) % 5], [0.6f + (i % 7) * 0.05f, 0.1f])).ToArray();
        var zipf = new Selector(5, 100, 2, BalanceMode.UnbalancedZipf);
        foreach (var r in rows) zipf.Offer(r);
        var quotas = zipf.Quotas();
        Assert.Equal(500, quotas.Sum());
        Assert.True(quotas.Max() > 2 * quotas.Min());
        Assert.Equal(500, zipf.Result().Sum(r => r.Ranked.Length));

        var r1 = new Selector(5, 50, 2, BalanceMode.Random, seed: 4);
        var r2 = new Selector(5, 50, 2, BalanceMode.Random, seed: 4);
        var r3 = new Selector(5, 50, 2, BalanceMode.Random, seed: 5);
        foreach (var r in rows) { r1.Offer(r); r2.Offer(r); r3.Offer(r); }
        Assert.Equal(Run(r1), Run(r2));
        Assert.NotEqual(Run(r1), Run(r3));
        // Ranked by a random key, each kept image still carries the teacher's probability for its class, through compactions too.
        var probOf = rows.SelectMany(r => r.Classes.Select((c, j) => (Key: (c, r.Id), P: r.Probs[j]))).ToDictionary(x => x.Key, x => x.P);
        foreach (var (c, ranked1) in r1.Result())
            foreach (var kept in ranked1) Assert.Equal(probOf[(c, kept.Id)], kept.Prob);
        var small = new Selector(5, 50, 2, BalanceMode.Random, 4, stageOffers: 64);
        foreach (var r in rows) small.Offer(r);
        Assert.Equal(Run(r1), Run(small));
        var ranked = new Selector(5, 50, 2);
        foreach (var r in rows) ranked.Offer(r);
        Assert.NotEqual(Run(ranked), Run(r1));
    }

    [Fact]
    public async Task ScoreShards_WithARowOutOfOrder_FailWithTheRow()
    {
        // The selection takes a row's first P as its top P and stops at the first below every threshold, so a
        // shard whose lists are not in descending probability is rejected where it is read, naming the row.
        using var tmp = new TempDir();
        string path = tmp.Sub("out-of-order.parquet");
        await ScoreShards.WriteAsync(path, [new ScoreRow("ok", [1, 2], [0.6f, 0.4f]), new ScoreRow("bad", [3, 4], [0.3f, 0.7f])]);
        var e = await Assert.ThrowsAsync<Streaming.Core.StreamingException>(async () =>
        {
            await foreach (var _ in ScoreShards.ReadBatchesAsync(path)) { }
        });
        Assert.Contains("row 1 ('bad'): probabilities not in descending order", e.Message);
    }

    [Fact]
    public async Task ScoreShards_RoundTrip_AndSelectionFilesAreByteIdentical()
    {
        using var tmp = new TempDir();
        var rows = Enumerable.Range(0, 500).Select(i => new ScoreRow($"id{i:D4}", [i % 10, (i + 3) % 10, (i + 5) % 10], [0.7f - i % 13 * 0.01f, 0.2f, 0.1f])).ToList();
        string path = tmp.Sub("score-shard-00000.parquet");
        string sha256 = await ScoreShards.WriteAsync(path, rows, rowGroupSize: 128);
        Assert.Equal(Streaming.Core.Hashing.Sha256File(path), sha256); // hashed while written: the file's own hash
        var back = new List<ScoreRow>();
        await foreach (var r in ScoreShards.ReadAsync(path)) back.Add(r);
        Assert.Equal(rows.Count, back.Count);
        for (int i = 0; i < rows.Count; i++)
        {
            Assert.Equal(rows[i].Id, back[i].Id);
            Assert.Equal(rows[i].Classes, back[i].Classes);
            Assert.Equal(rows[i].Probs, back[i].Probs);
        }
        var a = new Selector(10, 20, 2);
        var b = new Selector(10, 20, 2);
        foreach (var r in rows) a.Offer(r);
        foreach (var r in Enumerable.Reverse(rows)) b.Offer(r);
        var ma = await SelectionWriter.WriteAsync(tmp.Sub("a"), a, new SelectionManifest());
        var mb = await SelectionWriter.WriteAsync(tmp.Sub("b"), b, new SelectionManifest());
        Assert.Equal(File.ReadAllBytes(Path.Combine(tmp.Sub("a"), SelectionManifest.DhatFileName)), File.ReadAllBytes(Path.Combine(tmp.Sub("b"), SelectionManifest.DhatFileName)));
        Assert.Equal(ma.DhatSha256, mb.DhatSha256);
        Assert.Equal(200, ma.Selected);
    }
}
