using System.Numerics;
using System.Runtime.CompilerServices;
using System.Text;

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

    /// <summary>The lowest of <see cref="_thresholds"/> (as of the last flush; they only rise, so it stays a lower bound).</summary>
    private float _floor = float.NegativeInfinity;

    /// <summary>How many offers wait in the stage before they go to their heaps (<see cref="Flush"/>): 256 KB of offers, so that the stage stays in the L2 cache (measured best of 2^12 .. 2^18 at C = 1,000).</summary>
    private const int StageOffers = 1 << 14;

    private readonly record struct StagedOffer(int Class, float Key, float Prob, int Row);

    private readonly record struct StagedRow(ulong Hash, int IdOffset, int IdLength);

    private readonly StagedOffer[] _stage;
    private readonly StagedRow[] _rowIds;
    private byte[] _stageIds;
    private int _staged, _stagedRows, _stageIdBytes;
    private readonly int[] _classStarts, _classNext;
    private readonly StagedCandidate[] _sorted;

    public Selector(int classes, int k, int p, BalanceMode mode = BalanceMode.Ranked, ulong seed = 0)
        : this(classes, k, p, mode, seed, StageOffers)
    {
    }

    /// <summary>A selector whose stage holds <paramref name="stageOffers"/> offers (tests use tiny ones, to flush often).</summary>
    internal Selector(int classes, int k, int p, BalanceMode mode, ulong seed, int stageOffers)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(stageOffers, 64); // room for one row of up to 64 classes
        if (p > stageOffers) throw new ArgumentOutOfRangeException(nameof(p), p, $"P is at most {stageOffers} (one row's offers must fit the stage)");
        _stage = new StagedOffer[stageOffers];
        _rowIds = new StagedRow[stageOffers];
        _stageIds = new byte[32 * stageOffers];
        _sorted = new StagedCandidate[stageOffers];
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
        _classStarts = new int[classes + 1];
        _classNext = new int[classes];
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
        int n = TopP.Counted(P, classes.Length);
        if (n == 0) return;
        var thresholds = _thresholds;
        if ((uint)classes[0] < (uint)thresholds.Length) _topOne[classes[0]]++;
        if (Mode == BalanceMode.Random || n > 64)
        {
            OfferEach(id, classes[..n], probs[..n]);
            return;
        }
        classes = classes[..n];
        probs = probs[..n];
        // The common case at scale: every offer falls below its class's threshold (its K-th best so far), one
        // comparison each against a dense array. This loop only marks the offers that pass, and calls nothing,
        // so it keeps its state in registers; the id is hashed and staged once a row, only when some pass.
        // The row is in descending probability, so once an offer falls below the lowest threshold of all the
        // classes, every later one does too: at scale most rows end after one or two comparisons.
        ulong passed = 0;
        float floor = _floor;
        for (int j = 0; j < classes.Length; j++)
        {
            int c = classes[j];
            if ((uint)c >= (uint)thresholds.Length) throw OutOfRange(id, c);
            float prob = probs[j];
            if (prob < floor) break;
            if (prob >= thresholds[c]) passed |= 1UL << j;
        }
        if (passed != 0) Stage(id, classes, probs, passed);
    }

    /// <summary>Stages the offers of a row marked in <paramref name="passed"/> (ranked modes: the key is the probability).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void Stage(ReadOnlySpan<char> id, ReadOnlySpan<int> classes, ReadOnlySpan<float> probs, ulong passed)
    {
        int row = StageRow(id, ClassHeap.IdHash(id), BitOperations.PopCount(passed));
        for (; passed != 0; passed &= passed - 1)
        {
            int j = BitOperations.TrailingZeroCount(passed);
            _stage[_staged++] = new StagedOffer(classes[j], probs[j], probs[j], row);
        }
    }

    /// <summary>One offer at a time: random selection (whose key needs the id's hash first) and rows of more than 64 classes.</summary>
    private void OfferEach(ReadOnlySpan<char> id, ReadOnlySpan<int> classes, ReadOnlySpan<float> probs)
    {
        var thresholds = _thresholds;
        bool random = Mode == BalanceMode.Random;
        ulong hash = random ? StableHash.Of(id, 0) : 0; // the random key's hash: stable across versions, unlike the heaps' IdHash
        int row = -1;
        for (int j = 0; j < classes.Length; j++)
        {
            int c = classes[j];
            if ((uint)c >= (uint)thresholds.Length) throw OutOfRange(id, c);
            float key = random ? RandomKey(hash, c) : probs[j];
            if (key < thresholds[c]) continue;
            if (row < 0) row = StageRow(id, ClassHeap.IdHash(id), classes.Length - j);
            _stage[_staged++] = new StagedOffer(c, key, probs[j], row);
        }
    }

    /// <summary>
    /// Copies a row's id (UTF-8) and hash into the stage, with room for <paramref name="offers"/> offers of it
    /// (flushing the stage first when it lacks it); returns the row's index there.
    /// </summary>
    private int StageRow(ReadOnlySpan<char> id, ulong hash, int offers)
    {
        if (_staged + offers > _stage.Length || _stageIdBytes + Encoding.UTF8.GetMaxByteCount(id.Length) > _stageIds.Length) Flush(id.Length);
        int at = _stageIdBytes, length = ClassHeap.Utf8(id, _stageIds.AsSpan(at));
        _stageIdBytes = at + length;
        int row = _stagedRows++;
        _rowIds[row] = new StagedRow(hash, at, length);
        return row;
    }

    /// <summary>
    /// Hands the staged offers to their class heaps, class by class (a counting sort, stable within a class), and
    /// refreshes the thresholds; then grows the id stage if an id of <paramref name="nextIdChars"/> characters would
    /// not fit an empty one.
    /// </summary>
    /// <remarks>
    /// Offers that beat their class's threshold are staged in one sequential buffer instead of being appended to
    /// their heap at once. Appending at once scatters each write over C buffers far apart in memory (C x 2 write
    /// streams, each a cache and TLB miss: ~130 ns an accepted offer at C = 1,000); handed over in class order,
    /// each heap receives its offers as one run. A heap is a pure function of what it was offered, so the
    /// order of hand-over changes nothing; the thresholds lag by at most one stage, which only lets a few more
    /// offers reach the heaps, where they are cut as before.
    /// </remarks>
    private void Flush(int nextIdChars = 0)
    {
        if (_staged > 0)
        {
            var starts = _classStarts;
            Array.Clear(starts);
            var stage = _stage;
            for (int i = 0; i < _staged; i++) starts[stage[i].Class + 1]++;
            for (int c = 0; c < Classes; c++) starts[c + 1] += starts[c];
            // The offers in class order, each with its id's place and hash: every heap then takes one contiguous run.
            var sorted = _sorted;
            var next = _classNext;
            Array.Copy(starts, next, Classes);
            var rows = _rowIds;
            for (int i = 0; i < _staged; i++)
            {
                ref var o = ref stage[i];
                ref var r = ref rows[o.Row];
                sorted[next[o.Class]++] = new StagedCandidate(o.Key, o.Prob, r.Hash, r.IdOffset, r.IdLength);
            }
            for (int c = 0; c < Classes; c++)
            {
                int start = starts[c], end = starts[c + 1];
                if (start == end) continue;
                var heap = _heaps[c];
                heap.OfferRun(sorted.AsSpan(start, end - start), _stageIds);
                _thresholds[c] = heap.Threshold;
            }
            RefreshFloor();
        }
        _staged = 0;
        _stagedRows = 0;
        _stageIdBytes = 0;
        int need = Encoding.UTF8.GetMaxByteCount(nextIdChars);
        if (need > _stageIds.Length) _stageIds = new byte[need];
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

    /// <summary>Offers rows given as columns (the scoring graph's form): row i's classes and probabilities are the i-th run of <paramref name="stride"/>.</summary>
    public void Offer(ReadOnlySpan<string> ids, ReadOnlySpan<int> classes, ReadOnlySpan<float> probs, int stride)
    {
        for (int i = 0; i < ids.Length; i++)
            Offer(ids[i].AsSpan(), classes.Slice(i * stride, stride), probs.Slice(i * stride, stride));
    }

    /// <summary>A uniform pseudo-random score in [0, 1) fixed by (seed, class, id): random selection that is still reproducible.</summary>
    private float RandomKey(ulong idHash, int c) => (float)((StableHash.Mix(idHash ^ StableHash.Mix(Seed ^ StableHash.Mix((ulong)c + 1))) >> 40) / (double)(1UL << 24));

    private void RefreshFloor()
    {
        float floor = float.PositiveInfinity;
        foreach (float t in _thresholds) floor = Math.Min(floor, t);
        _floor = floor;
    }

    /// <summary>Every class's threshold read again from its heap, and the floor (after heaps changed outside <see cref="Flush"/>).</summary>
    private void RefreshThresholds()
    {
        for (int c = 0; c < Classes; c++) _thresholds[c] = _heaps[c].Threshold;
        RefreshFloor();
    }

    /// <summary>Folds another selector over a disjoint (or overlapping) part of the same data into this one.</summary>
    public void Merge(Selector other)
    {
        if (other.Classes != Classes || other.K != K || other.P != P || other.Mode != Mode || other.Seed != Seed)
            throw new ArgumentException("only selectors with the same classes, K, P, mode and seed merge");
        Flush();
        other.Flush();
        for (int c = 0; c < Classes; c++)
        {
            _heaps[c].Merge(other._heaps[c]);
            _topOne[c] += other._topOne[c];
        }
        RefreshThresholds();
        Rows += other.Rows;
    }

    /// <summary>How often each class was an image's top-1 so far (what the Zipf quotas rank classes by).</summary>
    public long[] TopOneCounts() => (long[])_topOne.Clone();

    /// <summary>How many candidates class <paramref name="c"/> keeps now (at most its capacity).</summary>
    public int Count(int c)
    {
        Flush();
        return _heaps[c].Count;
    }

    /// <summary>Everything each class keeps now (up to its capacity, best first): with <see cref="TopOneCounts"/> and <see cref="Rows"/>, the whole state.</summary>
    public Candidate[] Kept(int c)
    {
        Flush();
        return _heaps[c].Ranked();
    }

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
        s.RefreshThresholds();
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
        Flush();
        var quotas = Quotas();
        // The classes rank independently (each heap is its own), so on every core: at K x C = 16M, ~5 s on one.
        var result = new (int, Candidate[])[Classes];
        Parallel.For(0, Classes, c =>
        {
            var ranked = _heaps[c].Ranked();
            result[c] = (c, ranked.Length > quotas[c] ? ranked[..quotas[c]] : ranked);
        });
        return result;
    }
}
