using System.Buffers.Binary;

namespace Streaming.Core.Selection;

/// <summary>
/// The selection core: per image keep its top-P classes; per class keep the best K images
/// (<see cref="ClassHeap"/>). Memory is at most 1.5 x K x C entries whatever the number of images offered, and
/// the result is a pure function of the scores, K, P and the mode (ties break on the id), so it does not
/// depend on the order of the rows, their batching or how many parts were merged.
/// </summary>
public sealed class Selector
{
    private readonly ClassHeap[] _heaps;
    private readonly long[] _topOne;
    private readonly float[] _thresholds; // each heap's rejection threshold, kept dense so that a rejection touches no heap

    public Selector(int classes, int k, int p, BalanceMode mode = BalanceMode.Ranked, ulong seed = 0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(classes, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(p, 1);
        Classes = classes;
        K = k;
        P = p;
        Mode = mode;
        Seed = seed;
        // Zipf needs room for its largest class (at most K x C); the others never exceed K.
        int capacity = mode == BalanceMode.UnbalancedZipf ? (int)Math.Min(int.MaxValue, (long)k * classes) : k;
        _heaps = new ClassHeap[classes];
        for (int c = 0; c < classes; c++) _heaps[c] = new ClassHeap(capacity);
        _topOne = new long[classes];
        _thresholds = new float[classes];
        Array.Fill(_thresholds, float.NegativeInfinity);
    }

    public int Classes { get; }
    public int K { get; }
    public int P { get; }
    public BalanceMode Mode { get; }
    public ulong Seed { get; }

    /// <summary>Rows offered so far.</summary>
    public long Rows { get; private set; }

    /// <summary>Offers one image's scores (classes in descending probability; only the first P count).</summary>
    public void Offer(string id, ReadOnlySpan<int> classes, ReadOnlySpan<float> probs) => Offer(id.AsSpan(), classes, probs);

    /// <summary>Offers one image's scores (classes in descending probability; only the first P count).</summary>
    public void Offer(ReadOnlySpan<char> id, ReadOnlySpan<int> classes, ReadOnlySpan<float> probs)
    {
        Rows++;
        int n = Math.Min(P, classes.Length);
        if (n > 0 && (uint)classes[0] < (uint)Classes) _topOne[classes[0]]++;
        // The id is hashed at most once a row, and only when some class might keep it: in the steady state
        // most offers fall below their class's threshold (its K-th best so far) and cost one comparison.
        ulong hash = 0;
        bool hashed = false;
        var heaps = _heaps;
        var thresholds = _thresholds;
        if (Mode != BalanceMode.Random)
        {
            for (int j = 0; j < n; j++)
            {
                int c = classes[j];
                if ((uint)c >= (uint)thresholds.Length) throw OutOfRange(id, c);
                float key = probs[j];
                if (key < thresholds[c]) continue; // the common case at scale: one comparison against a dense array
                if (!hashed) { hash = StableHash.Of(id, 0); hashed = true; }
                var heap = heaps[c];
                heap.Offer(key, id, hash, key);
                thresholds[c] = heap.Threshold;
            }
            return;
        }
        for (int j = 0; j < n; j++)
        {
            int c = classes[j];
            if ((uint)c >= (uint)thresholds.Length) throw OutOfRange(id, c);
            if (!hashed) { hash = StableHash.Of(id, 0); hashed = true; }
            float key = RandomKey(hash, c);
            if (key < thresholds[c]) continue;
            var heap = heaps[c];
            heap.Offer(key, id, hash, probs[j]);
            thresholds[c] = heap.Threshold;
        }
    }

    private StreamingException OutOfRange(ReadOnlySpan<char> id, int c) => new($"score row '{id}' names class {c}, outside 0..{Classes - 1}");

    /// <summary>Offers every row of a batch.</summary>
    public void Offer(ScoreBatch batch)
    {
        for (int i = 0; i < batch.Count; i++)
        {
            int start = batch.Offsets[i], end = batch.Offsets[i + 1];
            Offer(batch.Ids[i].AsSpan(), batch.Classes.AsSpan(start, end - start), batch.Probs.AsSpan(start, end - start));
        }
    }

    public void Offer(ScoreRow row) => Offer(row.Id, row.Classes, row.Probs);

    /// <summary>A uniform pseudo-random score in [0, 1) fixed by (seed, class, id): random selection that is still reproducible.</summary>
    private float RandomKey(ulong idHash, int c) => (float)((StableHash.Mix(idHash ^ StableHash.Mix(Seed ^ StableHash.Mix((ulong)c + 1))) >> 40) / (double)(1UL << 24));

    /// <summary>Folds another selector over a disjoint (or overlapping) part of the same data into this one.</summary>
    public void Merge(Selector other)
    {
        if (other.Classes != Classes || other.K != K || other.P != P || other.Mode != Mode || other.Seed != Seed)
            throw new ArgumentException("only selectors with the same classes, K, P, mode and seed merge");
        for (int c = 0; c < Classes; c++)
        {
            _heaps[c].Merge(other._heaps[c]);
            _thresholds[c] = _heaps[c].Threshold;
            _topOne[c] += other._topOne[c];
        }
        Rows += other.Rows;
    }

    /// <summary>How often each class was an image's top-1 so far (what the Zipf quotas rank classes by).</summary>
    public long[] TopOneCounts() => (long[])_topOne.Clone();

    /// <summary>How many candidates class <paramref name="c"/> keeps now (at most its capacity).</summary>
    public int Count(int c) => _heaps[c].Count;

    /// <summary>Everything each class keeps now (up to its capacity, best first): with <see cref="TopOneCounts"/> and <see cref="Rows"/>, the whole state.</summary>
    public Candidate[] Kept(int c) => _heaps[c].Ranked();

    /// <summary>
    /// A selector in the state another one was in, from what it kept (<see cref="Kept"/>), its top-1 counts
    /// and its row count: the inverse of a checkpoint. Offering more rows to it then gives what offering them
    /// to the original would have (the kept set is the top K of everything offered, and merging is idempotent per id).
    /// </summary>
    public static Selector Restore(int classes, int k, int p, BalanceMode mode, ulong seed, long rows, long[] topOne,
        IEnumerable<(int Class, Candidate Kept)> kept)
    {
        if (topOne.Length != classes) throw new ArgumentException($"top-1 counts for {topOne.Length} classes, expected {classes}");
        var s = new Selector(classes, k, p, mode, seed) { Rows = rows };
        topOne.CopyTo(s._topOne, 0);
        foreach (var (c, e) in kept)
        {
            if ((uint)c >= (uint)classes) throw new ArgumentException($"class {c} outside 0..{classes - 1}");
            s._heaps[c].Offer(e.Score, e.Id, e.Prob);
        }
        for (int c = 0; c < classes; c++) s._thresholds[c] = s._heaps[c].Threshold;
        return s;
    }

    /// <summary>How many images each class gets: K each, or the Zipf split of K x C.</summary>
    public int[] Quotas()
    {
        var quotas = new int[Classes];
        if (Mode != BalanceMode.UnbalancedZipf)
        {
            Array.Fill(quotas, K);
            return quotas;
        }
        // Classes ordered by how often the teacher ranks them first (ties by index): the i-th gets a share 1/(i+1).
        var order = Enumerable.Range(0, Classes).OrderByDescending(c => _topOne[c]).ThenBy(c => c).ToArray();
        double h = Enumerable.Range(1, Classes).Sum(i => 1.0 / i);
        long total = (long)K * Classes, given = 0;
        for (int i = 0; i < Classes; i++)
        {
            quotas[order[i]] = (int)Math.Floor(total / h / (i + 1));
            given += quotas[order[i]];
        }
        for (int i = 0; given < total; i = (i + 1) % Classes, given++) quotas[order[i]]++;
        return quotas;
    }

    /// <summary>D-hat: for each class, its kept images best first, cut to the class's quota.</summary>
    public IReadOnlyList<(int Class, Candidate[] Ranked)> Result()
    {
        var quotas = Quotas();
        var result = new List<(int, Candidate[])>(Classes);
        for (int c = 0; c < Classes; c++)
        {
            var ranked = _heaps[c].Ranked();
            result.Add((c, ranked.Length > quotas[c] ? ranked[..quotas[c]] : ranked));
        }
        return result;
    }
}
