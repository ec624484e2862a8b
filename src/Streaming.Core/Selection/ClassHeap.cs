using System.Runtime.CompilerServices;
using System.Text;

namespace Streaming.Core.Selection;

/// <summary>
/// The K best candidates of one class, under (score desc, id asc), each id counted once (an image offered
/// twice, as after a restart or when merging overlapping parts, keeps its best score). The kept set is a
/// pure function of the candidates offered, not of their order or batching.
/// </summary>
/// <remarks>
/// <para>
/// Not a binary heap, though it plays one's part. A heap of K entries per class, with K x C in the tens of
/// millions, makes every insertion a chain of cache misses (sift through log K levels, a hash-set probe,
/// the id): measured at 2-3 µs an insertion, which is what kept selection at ~0.1M rows/s while heaps
/// fill. Here a candidate that beats the class's threshold is appended to a buffer (sequential writes,
/// so cache-friendly); when the buffer holds K + K/2 entries it is compacted: duplicates of an id merge,
/// a quickselect finds the K-th best, one stable pass keeps the K best and slides their ids down, and the
/// K-th best's score becomes the threshold. A candidate below the threshold is rejected in O(1); an
/// accepted one costs O(1) amortized.
/// </para>
/// <para>
/// Nothing per candidate is a GC-traced object: an entry is a struct of value fields and ids are UTF-8
/// bytes in one arena, so the collector has nothing to trace and a full buffer allocates nothing.
/// </para>
/// </remarks>
public sealed class ClassHeap
{
    private struct Entry
    {
        public float Score;
        public float Prob;
        public ulong Hash;
        public int IdOffset;
        public int IdLength;
    }

    private Entry[] _entries;
    private int _count;
    private byte[] _ids;
    private int _idBytes;
    private readonly int _buffer;
    private bool _compacted = true; // no entries yet: trivially compacted

    /// <summary>Candidates below this score cannot enter the top K (set at each compaction, once K are kept).</summary>
    private float _threshold = float.NegativeInfinity;

    /// <summary>The id of the K-th best at the last compaction: an offer that ties the threshold must have a smaller id.</summary>
    private string? _thresholdId;

    public ClassHeap(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
        _buffer = (int)Math.Min(int.MaxValue - 64L, capacity + Math.Max(64L, capacity / 2));
        int initial = Math.Min(_buffer, 256);
        _entries = new Entry[initial];
        _ids = new byte[initial * 16];
    }

    /// <summary>K: how many candidates the class keeps.</summary>
    public int Capacity { get; }

    /// <summary>How many candidates the class keeps now (at most <see cref="Capacity"/>).</summary>
    public int Count
    {
        get
        {
            Compact();
            return _count;
        }
    }

    /// <summary>
    /// A score below which an offer is certainly rejected: the K-th best score as of the last compaction
    /// (negative infinity until K distinct candidates were seen). Cheap to read on every offer.
    /// </summary>
    public float Threshold
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _threshold;
    }

    public bool Offer(float score, string id) => Offer(score, id, score);

    /// <summary>Offers a candidate ranked by <paramref name="score"/>; returns false when it was rejected outright.</summary>
    public bool Offer(float score, string id, float prob) => Offer(score, id.AsSpan(), StableHash.Of(id, 0), prob);

    /// <summary>
    /// Offers a candidate whose id's <see cref="StableHash"/> (seed 0) the caller computed once for all the
    /// classes of its row. Returns false when it was rejected outright; true means it is buffered, and
    /// stays only if it is among the K best at the next compaction.
    /// </summary>
    public bool Offer(float score, ReadOnlySpan<char> id, ulong idHash, float prob)
    {
        if (!Beats(score, id)) return false;
        if (_count == _entries.Length)
        {
            if (_count >= _buffer) Compact();
            if (_count == _entries.Length) Array.Resize(ref _entries, (int)Math.Min(_buffer, 2L * _entries.Length));
            if (!Beats(score, id)) return false;
        }
        int bytes = Encoding.UTF8.GetMaxByteCount(id.Length);
        if (_idBytes + bytes > _ids.Length) Array.Resize(ref _ids, (int)Math.Min(Array.MaxLength, Math.Max(2L * _ids.Length, _idBytes + (long)bytes)));
        int length = Utf8(id, _ids.AsSpan(_idBytes));
        ref var e = ref _entries[_count++];
        e.Score = score;
        e.Prob = prob;
        e.Hash = idHash;
        e.IdOffset = _idBytes;
        e.IdLength = length;
        _idBytes += length;
        _compacted = false;
        return true;
    }

    /// <summary>Whether an offer ranks above the K-th best of the last compaction (always, before the first cut).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Beats(float score, ReadOnlySpan<char> id) =>
        score > _threshold || (score == _threshold && (_thresholdId is null || id.SequenceCompareTo(_thresholdId) < 0));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Utf8(ReadOnlySpan<char> id, Span<byte> target)
    {
        int i = 0;
        for (; i < id.Length && id[i] < 0x80; i++) target[i] = (byte)id[i];
        return i == id.Length ? i : i + Encoding.UTF8.GetBytes(id[i..], target[i..]);
    }

    /// <summary>Adds everything another heap of the same class kept (merging disjoint or overlapping parts).</summary>
    public void Merge(ClassHeap other)
    {
        other.Compact();
        for (int i = 0; i < other._count; i++)
        {
            var e = other._entries[i];
            Offer(e.Score, other.IdString(e), e.Hash, e.Prob);
        }
    }

    /// <summary>The kept candidates, best first (rank 1 first).</summary>
    public Candidate[] Ranked()
    {
        Compact();
        int n = _count;
        // Sort on the scores alone (a primitive sort), then order each run of equal scores by id.
        var keys = new float[n];
        var order = new int[n];
        for (int i = 0; i < n; i++)
        {
            keys[i] = -_entries[i].Score;
            order[i] = i;
        }
        Array.Sort(keys, order);
        var result = new Candidate[n];
        for (int i = 0; i < n; i++)
        {
            ref var e = ref _entries[order[i]];
            result[i] = new Candidate(e.Score, IdString(e), e.Prob);
        }
        for (int start = 0; start < n;)
        {
            int end = start + 1;
            while (end < n && keys[end] == keys[start]) end++;
            if (end - start > 1) Array.Sort(result, start, end - start, Comparer<Candidate>.Create((a, b) => Candidate.Compare(b, a)));
            start = end;
        }
        return result;
    }

    private string IdString(in Entry e) => Encoding.UTF8.GetString(_ids, e.IdOffset, e.IdLength);

    /// <summary>Rank order of two buffered entries: positive when <paramref name="a"/> ranks above <paramref name="b"/>.</summary>
    private int Compare(in Entry a, in Entry b)
    {
        int c = a.Score.CompareTo(b.Score);
        if (c != 0) return c;
        return CompareIds(b, a);
    }

    /// <summary>
    /// Ordinal (UTF-16) order of two ids, on their UTF-8 bytes. Byte order is code point order, which
    /// differs from UTF-16 order only between a supplementary character and one in U+E000..U+FFFF (lead
    /// bytes 0xEE..0xF4); where such bytes differ, the ids are compared as strings.
    /// </summary>
    private int CompareIds(in Entry a, in Entry b)
    {
        var x = _ids.AsSpan(a.IdOffset, a.IdLength);
        var y = _ids.AsSpan(b.IdOffset, b.IdLength);
        int common = x.CommonPrefixLength(y);
        if (common < x.Length && common < y.Length && (x[common] >= 0xEE || y[common] >= 0xEE))
            return string.CompareOrdinal(IdString(a), IdString(b));
        return x.SequenceCompareTo(y);
    }

    [ThreadStatic] private static int[]? t_table;
    [ThreadStatic] private static int[]? t_order;
    [ThreadStatic] private static float[]? t_keys;

    /// <summary>Merges duplicate ids, keeps the K best in arrival order, compacts the id arena and raises the threshold.</summary>
    private void Compact()
    {
        if (_compacted) return;
        _compacted = true;
        var entries = _entries;
        int n = _count;

        // 1. Duplicates: an open-addressing table of entry indexes probed by id hash; the better entry stays, the other is marked dead (NaN score).
        int size = 16;
        while (size < 2 * n) size *= 2;
        var table = t_table is { } t && t.Length >= size ? t : t_table = new int[size];
        Array.Clear(table, 0, size);
        int mask = size - 1, live = n;
        for (int i = 0; i < n; i++)
        {
            ulong h = entries[i].Hash;
            for (int j = (int)h & mask; ; j = (j + 1) & mask)
            {
                int cell = table[j];
                if (cell == 0) { table[j] = i + 1; break; }
                if (entries[cell - 1].Hash != h) continue;
                // The same image twice: keep its better entry.
                if (Compare(entries[i], entries[cell - 1]) > 0)
                {
                    entries[cell - 1].Score = float.NaN;
                    table[j] = i + 1;
                }
                else
                {
                    entries[i].Score = float.NaN;
                }
                live--;
                break;
            }
        }

        // 2. The K-th best of the live entries, by quickselect over (score, index) pairs copied out: sequential,
        // and the entries themselves are touched only to break ties.
        bool cut = live > Capacity;
        int kth = -1;
        if (cut)
        {
            var keys = t_keys is { } kk && kk.Length >= live ? kk : t_keys = new float[Math.Max(live, 1024)];
            var order = t_order is { } o && o.Length >= live ? o : t_order = new int[Math.Max(live, 1024)];
            int m = 0;
            for (int i = 0; i < n; i++)
            {
                float score = entries[i].Score;
                if (float.IsNaN(score)) continue;
                keys[m] = score;
                order[m++] = i;
            }
            kth = Select(keys, order, live, Capacity - 1);
        }

        // 3. One stable pass keeps the survivors in arrival order and slides their ids down the arena.
        int kept = 0, at = 0;
        for (int i = 0; i < n; i++)
        {
            var e = entries[i];
            if (float.IsNaN(e.Score)) continue;
            if (cut && Compare(e, entries[kth]) < 0) continue;
            if (e.IdOffset != at) Buffer.BlockCopy(_ids, e.IdOffset, _ids, at, e.IdLength);
            e.IdOffset = at;
            at += e.IdLength;
            if (i == kth) kth = kept;
            entries[kept++] = e;
        }
        _count = kept;
        _idBytes = at;
        if (cut)
        {
            _threshold = entries[kth].Score;
            _thresholdId = IdString(entries[kth]);
        }
    }

    /// <summary>Positive when the entry at index <paramref name="i"/> (score <paramref name="si"/>) ranks above the one at <paramref name="j"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Compare(float si, int i, float sj, int j) => si > sj ? 1 : si < sj ? -1 : CompareIds(_entries[j], _entries[i]);

    /// <summary>Reorders the pairs (keys, order)[0..n) so that position <paramref name="k"/> holds the k-th best; returns its entry index.</summary>
    private int Select(float[] keys, int[] order, int n, int k)
    {
        int lo = 0, hi = n - 1;
        while (hi > lo)
        {
            // Median of three as the pivot, so runs that arrive sorted stay linear.
            int mid = lo + ((hi - lo) >> 1);
            if (Compare(keys[mid], order[mid], keys[lo], order[lo]) > 0) Swap(keys, order, mid, lo);
            if (Compare(keys[hi], order[hi], keys[lo], order[lo]) > 0) Swap(keys, order, hi, lo);
            if (Compare(keys[hi], order[hi], keys[mid], order[mid]) > 0) Swap(keys, order, hi, mid);
            float pk = keys[mid];
            int pi = order[mid];
            int a = lo, b = hi;
            while (a <= b)
            {
                while (Compare(keys[a], order[a], pk, pi) > 0) a++;
                while (Compare(keys[b], order[b], pk, pi) < 0) b--;
                if (a <= b)
                {
                    Swap(keys, order, a, b);
                    a++;
                    b--;
                }
            }
            if (k <= b) hi = b;
            else if (k >= a) lo = a;
            else break;
        }
        return order[k];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Swap(float[] keys, int[] order, int a, int b)
    {
        (keys[a], keys[b]) = (keys[b], keys[a]);
        (order[a], order[b]) = (order[b], order[a]);
    }
}
