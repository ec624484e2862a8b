using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
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
/// so cache-friendly; the <see cref="Selector"/> hands each heap its offers as one run); when the buffer
/// holds K + K/2 entries it is compacted: duplicates of an id merge, a radix select finds the K-th best,
/// one stable pass keeps the K best and slides their ids down, and the K-th best's score becomes the
/// threshold. A candidate below the threshold is rejected in O(1); an accepted one costs O(1) amortized.
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
        public uint Hash;
        public int IdOffset;
        public int IdLength;
    }

    /// <summary>16 bytes an entry, so that a class's whole buffer (K + K/2 of them at K = 16,000) fits in the L2 cache while it is compacted.</summary>
    private Entry[] _entries;

    /// <summary>
    /// Each entry's probability, where it differs from its ranking score (random selection ranks by a random key);
    /// null while every probability offered equalled its score (the ranked modes), which costs nothing.
    /// </summary>
    private float[]? _probs;
    private int _count;
    private byte[] _ids;
    private int _idBytes;
    private readonly int _buffer;
    private bool _compacted = true; // no entries yet: trivially compacted

    /// <summary>Candidates below this score cannot enter the top K (set at each compaction, once K are kept).</summary>
    private float _threshold = float.NegativeInfinity;

    /// <summary>The id of the K-th best at the last compaction: an offer that ties the threshold must have a smaller id.</summary>
    private string? _thresholdId;

    /// <summary><see cref="_thresholdId"/> in UTF-8, for offers whose ids arrive as bytes.</summary>
    private byte[]? _thresholdUtf8;

    public ClassHeap(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
        _buffer = (int)Math.Min(int.MaxValue - 64L, capacity + Math.Max(64L, capacity / 2));
        // The whole buffer at once (up to 64k entries, beyond which it grows by doubling), uninitialized: the
        // memory is only touched (and resident) as entries arrive, and no growth copies it.
        int initial = Math.Min(_buffer, 1 << 16);
        _entries = GC.AllocateUninitializedArray<Entry>(initial);
        _ids = GC.AllocateUninitializedArray<byte>(initial * 16);
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
    public bool Offer(float score, string id, float prob) => Offer(score, id.AsSpan(), IdHash(id), prob);

    /// <summary>
    /// Offers a candidate whose id's <see cref="IdHash"/> the caller computed once for all the
    /// classes of its row. Returns false when it was rejected outright; true means it is buffered, and
    /// stays only if it is among the K best at the next compaction.
    /// </summary>
    public bool Offer(float score, ReadOnlySpan<char> id, ulong idHash, float prob)
    {
        if (!Beats(score, id)) return false;
        if (_count == _entries.Length && !MakeRoom() && !Beats(score, id)) return false;
        ReserveIdBytes(Encoding.UTF8.GetMaxByteCount(id.Length));
        Append(score, prob, idHash, Utf8(id, _ids.AsSpan(_idBytes)));
        return true;
    }

    /// <summary>
    /// <see cref="Offer(float, ReadOnlySpan{char}, ulong, float)"/> for an id already in UTF-8 (as the
    /// <see cref="Selector"/> stages them): the bytes are copied, not encoded.
    /// </summary>
    internal bool Offer(float score, byte[] idSource, int idOffset, int idLength, ulong idHash, float prob)
    {
        if (!Beats(score, idSource.AsSpan(idOffset, idLength))) return false;
        if (_count == _entries.Length && !MakeRoom() && !Beats(score, idSource.AsSpan(idOffset, idLength))) return false;
        ReserveIdBytes(idLength + 16);
        if (idLength <= 16 && idOffset + 16 <= idSource.Length)
        {
            // A short id: two 8-byte words (the arena has room past its end; what lands there is overwritten later).
            ref byte from = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(idSource), idOffset);
            ref byte to = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_ids), _idBytes);
            Unsafe.WriteUnaligned(ref to, Unsafe.ReadUnaligned<ulong>(ref from));
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref to, 8), Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref from, 8)));
        }
        else
        {
            idSource.AsSpan(idOffset, idLength).CopyTo(_ids.AsSpan(_idBytes));
        }
        Append(score, prob, idHash, idLength);
        return true;
    }

    private static T[] Grow<T>(T[] array, int size, int used)
    {
        var grown = GC.AllocateUninitializedArray<T>(size);
        Array.Copy(array, grown, used);
        return grown;
    }

    /// <summary>
    /// Offers a run of staged candidates (ids in UTF-8 in <paramref name="idSource"/>), as
    /// <see cref="Offer(float, byte[], int, int, ulong, float)"/> one by one would.
    /// </summary>
    internal void OfferRun(ReadOnlySpan<StagedCandidate> run, byte[] idSource)
    {
        for (int i = 0; i < run.Length; i++)
        {
            ref readonly var o = ref run[i];
            if (o.Score < _threshold) continue; // the threshold rises as the run is taken in
            Offer(o.Score, idSource, o.IdOffset, o.IdLength, o.Hash, o.Prob);
        }
    }

    /// <summary>
    /// A fast 64-bit hash of an id's UTF-16 code units, eight bytes at a step: what the heaps find duplicate ids
    /// by (with the ids compared too). Never stored, so unlike <see cref="StableHash"/> it may change between versions.
    /// </summary>
    public static ulong IdHash(ReadOnlySpan<char> id)
    {
        var bytes = MemoryMarshal.AsBytes(id);
        ulong h = 0x9E3779B97F4A7C15UL ^ (ulong)bytes.Length;
        for (; bytes.Length >= 8; bytes = bytes[8..])
        {
            h = (h ^ BinaryPrimitives.ReadUInt64LittleEndian(bytes)) * 0xBF58476D1CE4E5B9UL;
            h ^= h >> 29;
        }
        ulong tail = bytes.Length switch
        {
            6 => BinaryPrimitives.ReadUInt32LittleEndian(bytes) | (ulong)BinaryPrimitives.ReadUInt16LittleEndian(bytes[4..]) << 32,
            4 => BinaryPrimitives.ReadUInt32LittleEndian(bytes),
            2 => BinaryPrimitives.ReadUInt16LittleEndian(bytes),
            _ => 0,
        };
        return StableHash.Mix(h ^ tail);
    }

    /// <summary>Room for one more entry: compacts a full buffer, grows a short one. False when it compacted (the threshold may have risen).</summary>
    private bool MakeRoom()
    {
        bool compacted = false;
        if (_count >= _buffer)
        {
            Compact();
            compacted = true;
        }
        if (_count == _entries.Length)
        {
            _entries = Grow(_entries, (int)Math.Min(_buffer, 2L * _entries.Length), _count);
            if (_probs is not null) _probs = Grow(_probs, _entries.Length, _count);
        }
        return !compacted;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ReserveIdBytes(int bytes)
    {
        if (_idBytes + bytes > _ids.Length) _ids = Grow(_ids, (int)Math.Min(Array.MaxLength, Math.Max(2L * _ids.Length, _idBytes + (long)bytes)), _idBytes);
    }

    /// <summary>Adds an entry whose id's <paramref name="idLength"/> bytes were just written at the end of the arena.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Append(float score, float prob, ulong idHash, int idLength)
    {
        if (_probs is not null) _probs[_count] = prob;
        else if (BitConverter.SingleToInt32Bits(prob) != BitConverter.SingleToInt32Bits(score)) StartProbs(prob);
        ref var e = ref _entries[_count++];
        e.Score = score;
        e.Hash = (uint)(idHash ^ (idHash >> 32));
        e.IdOffset = _idBytes;
        e.IdLength = idLength;
        _idBytes += idLength;
        _compacted = false;
    }

    /// <summary>The first probability that differs from its score: from now on probabilities are kept apart (the scores of the entries so far).</summary>
    private void StartProbs(float prob)
    {
        _probs = GC.AllocateUninitializedArray<float>(_entries.Length);
        for (int i = 0; i < _count; i++) _probs[i] = _entries[i].Score;
        _probs[_count] = prob;
    }

    private float ProbAt(int i) => _probs is null ? _entries[i].Score : _probs[i];

    /// <summary>Whether an offer ranks above the K-th best of the last compaction (always, before the first cut).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Beats(float score, ReadOnlySpan<char> id) =>
        score > _threshold || (score == _threshold && (_thresholdId is null || id.SequenceCompareTo(_thresholdId) < 0));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Beats(float score, ReadOnlySpan<byte> utf8Id) =>
        score > _threshold || (score == _threshold && (_thresholdUtf8 is null || CompareUtf8(utf8Id, _thresholdUtf8) < 0));

    /// <summary>Writes an id's UTF-8 bytes to <paramref name="target"/> (ASCII directly, the rest by the encoder); returns their count.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int Utf8(ReadOnlySpan<char> id, Span<byte> target)
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
            // The id's bytes straight from the other arena, with its stored hash (folding a 32-bit hash leaves it as it is).
            var e = other._entries[i];
            Offer(e.Score, other._ids, e.IdOffset, e.IdLength, e.Hash, other.ProbAt(i));
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
            result[i] = new Candidate(e.Score, IdString(e), ProbAt(order[i]));
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
    private int CompareIds(in Entry a, in Entry b) => CompareUtf8(_ids.AsSpan(a.IdOffset, a.IdLength), _ids.AsSpan(b.IdOffset, b.IdLength));

    /// <summary>Ordinal (UTF-16) order of two UTF-8 ids (see <see cref="CompareIds"/>).</summary>
    private static int CompareUtf8(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y)
    {
        int common = x.CommonPrefixLength(y);
        if (common < x.Length && common < y.Length && (x[common] >= 0xEE || y[common] >= 0xEE))
            return string.CompareOrdinal(Encoding.UTF8.GetString(x), Encoding.UTF8.GetString(y));
        return x.SequenceCompareTo(y);
    }

    [ThreadStatic] private static ulong[]? t_table;
    [ThreadStatic] private static uint[]? t_keys;
    [ThreadStatic] private static int[]? t_list;
    [ThreadStatic] private static int[]? t_histogram;
    [ThreadStatic] private static ulong[]? t_seen;
    [ThreadStatic] private static ulong[]? t_twice;

    /// <summary>A float's bits as an unsigned key in the same order (negative below positive); NaN is never asked.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint OrderedBits(float score)
    {
        uint bits = BitConverter.SingleToUInt32Bits(score == 0 ? 0f : score); // -0 ranks as +0, as float comparison has it
        return (bits & 0x8000_0000u) != 0 ? ~bits : bits | 0x8000_0000u;
    }

    /// <summary>Merges duplicate ids, keeps the K best in arrival order, compacts the id arena and raises the threshold.</summary>
    /// <remarks>
    /// Four sequential passes, with no comparison sort: (1) duplicates, through a bitset of hash buckets that stays in
    /// cache (an exact table only for the buckets seen twice); (2) the K-th best score, by a radix
    /// select on the score's bits (histograms of 11, 11 and 10 bits, the later ones over the few candidates left),
    /// so no comparison depends on the data and nothing mispredicts; (3) among the entries that tie the K-th
    /// best score (usually one), the smallest ids win; (4) one stable pass keeps the survivors and slides their
    /// ids down. Measured at C = 1,000, K = 16,000: 20 ns an entry, against 54 for the quickselect it replaced.
    /// </remarks>
    private void Compact()
    {
        if (_compacted) return;
        _compacted = true;
        var entries = _entries;
        int n = _count;

        // 1. Duplicates: the better entry of an id stays, the other is marked dead (NaN score, key 0). Most
        // compactions have none, so a bitset of hash buckets (16 bits an entry: it stays in L1/L2, unlike a table
        // of indexes) finds the buckets seen twice first; only the entries in those buckets (a few percent, plus
        // any real duplicates) go through an exact table.
        var keys = t_keys is { } kk && kk.Length >= n ? kk : t_keys = new uint[Math.Max(n, 1024)];
        int bits = 1024;
        while (bits < 16 * n) bits *= 2;
        var seen = t_seen is { } sb && sb.Length >= bits / 64 ? sb : t_seen = new ulong[bits / 64];
        var twice = t_twice is { } tb && tb.Length >= bits / 64 ? tb : t_twice = new ulong[bits / 64];
        Array.Clear(seen, 0, bits / 64);
        Array.Clear(twice, 0, bits / 64);
        int bucketMask = bits - 1;
        bool anyTwice = false;
        for (int i = 0; i < n; i++)
        {
            keys[i] = OrderedBits(entries[i].Score);
            int bucket = (int)entries[i].Hash & bucketMask;
            ulong bit = 1UL << bucket;
            ref ulong word = ref seen[bucket >> 6];
            if ((word & bit) != 0)
            {
                twice[bucket >> 6] |= bit;
                anyTwice = true;
            }
            word |= bit;
        }
        int live = n;
        if (anyTwice) live -= MergeDuplicates(entries, n, keys, twice, bucketMask);
        // Dead entries have key 0, below every live one (OrderedBits of a number is never 0 except for -NaN patterns, which scores are not).

        bool cut = live > Capacity;
        uint kthKey = 0;
        int kthIndex = -1;
        if (cut)
        {
            // 2. The K-th best key, by radix select from the top: how many of the best K fall in each 11-bit bucket, then within it.
            var histogram = t_histogram ??= new int[2048];
            var list = t_list is { } l && l.Length >= n ? l : t_list = new int[Math.Max(n, 1024)];
            int need = Capacity; // how many of the best are still to be placed at or below the current prefix
            Array.Clear(histogram);
            for (int i = 0; i < n; i++) histogram[keys[i] >> 21]++;
            uint b1 = Bucket(histogram, 2048, ref need);
            int m = 0;
            for (int i = 0; i < n; i++)
                if (keys[i] >> 21 == b1) list[m++] = i;
            Array.Clear(histogram);
            for (int x = 0; x < m; x++) histogram[(keys[list[x]] >> 10) & 2047]++;
            uint b2 = Bucket(histogram, 2048, ref need);
            int m2 = 0;
            for (int x = 0; x < m; x++)
                if (((keys[list[x]] >> 10) & 2047) == b2) list[m2++] = list[x];
            Array.Clear(histogram, 0, 1024);
            for (int x = 0; x < m2; x++) histogram[keys[list[x]] & 1023]++;
            uint b3 = Bucket(histogram, 1024, ref need);
            kthKey = (b1 << 21) | (b2 << 10) | b3;

            // 3. The entries that tie the K-th best score, in arrival order; `need` of them stay: the smallest ids.
            int ties = 0;
            for (int x = 0; x < m2; x++)
                if (keys[list[x]] == kthKey) list[ties++] = list[x];
            if (ties == 1)
            {
                kthIndex = list[0];
            }
            else
            {
                Array.Sort(list, 0, ties, Comparer<int>.Create((a, b) => CompareIds(entries[a], entries[b])));
                kthIndex = list[need - 1];
                for (int x = need; x < ties; x++)
                {
                    entries[list[x]].Score = float.NaN;
                    keys[list[x]] = 0;
                }
            }
            _threshold = entries[kthIndex].Score;
            _thresholdId = IdString(entries[kthIndex]);
            _thresholdUtf8 = _ids.AsSpan(entries[kthIndex].IdOffset, entries[kthIndex].IdLength).ToArray();
        }

        // 4. One stable pass keeps the survivors in arrival order and slides their ids down the arena.
        int kept = 0, at = 0;
        var ids = _ids;
        var probs = _probs;
        for (int i = 0; i < n; i++)
        {
            uint key = keys[i];
            if (key == 0 || key < kthKey) continue;
            var e = entries[i];
            if (e.IdOffset != at) CopyId(ids, e.IdOffset, at, e.IdLength);
            e.IdOffset = at;
            at += e.IdLength;
            if (probs is not null) probs[kept] = probs[i];
            entries[kept++] = e;
        }
        _count = kept;
        _idBytes = at;
    }

    /// <summary>
    /// Exact duplicate merge over the entries whose hash bucket was seen twice (<paramref name="twice"/>): an
    /// open-addressing table of (hash tag, index); returns how many entries died.
    /// </summary>
    private int MergeDuplicates(Entry[] entries, int n, uint[] keys, ulong[] twice, int bucketMask)
    {
        var list = t_list is { } l && l.Length >= n ? l : t_list = new int[Math.Max(n, 1024)];
        int m = 0;
        for (int i = 0; i < n; i++)
        {
            int bucket = (int)entries[i].Hash & bucketMask;
            if ((twice[bucket >> 6] & (1UL << bucket)) != 0) list[m++] = i;
        }
        int size = 16;
        while (size < 2 * m) size *= 2;
        var table = t_table is { } t && t.Length >= size ? t : t_table = new ulong[size];
        Array.Clear(table, 0, size);
        int mask = size - 1, dead = 0;
        for (int x = 0; x < m; x++)
        {
            int i = list[x];
            uint h = entries[i].Hash;
            ulong tag = (ulong)h << 32;
            for (int j = (int)((h * 0x9E3779B97F4A7C15UL) >> 32) & mask; ; j = (j + 1) & mask) // not the low bits: the suspects share those
            {
                ulong cell = table[j];
                if (cell == 0)
                {
                    table[j] = tag | (uint)(i + 1);
                    break;
                }
                if ((cell & 0xFFFF_FFFF_0000_0000UL) != tag) continue;
                int other = (int)(uint)cell - 1;
                if (CompareIds(entries[i], entries[other]) != 0) continue; // the same 32-bit hash, another id
                // The same image twice: keep its better entry.
                if (Compare(entries[i], entries[other]) > 0)
                {
                    entries[other].Score = float.NaN;
                    keys[other] = 0;
                    table[j] = tag | (uint)(i + 1);
                }
                else
                {
                    entries[i].Score = float.NaN;
                    keys[i] = 0;
                }
                dead++;
                break;
            }
        }
        return dead;
    }

    /// <summary>
    /// Walks a histogram from its highest bucket down to the one that holds the <paramref name="need"/>-th best;
    /// returns it and leaves in <paramref name="need"/> how many of the best are still to be found inside it.
    /// </summary>
    private static uint Bucket(int[] histogram, int buckets, ref int need)
    {
        for (int b = buckets - 1; ; b--)
        {
            int count = histogram[b];
            if (count >= need) return (uint)b;
            need -= count;
        }
    }

    /// <summary>Moves an id down the arena (to a lower or equal offset): short ids as two 8-byte words, read before either is written.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyId(byte[] arena, int from, int to, int length)
    {
        // Never write past the end of the id itself where a later id not yet moved could be.
        if (length <= 16 && from + 16 <= arena.Length && to + (length <= 8 ? 8 : 16) <= from + length)
        {
            ref byte start = ref MemoryMarshal.GetArrayDataReference(arena);
            ulong a = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref start, from));
            ulong b = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref start, from + 8));
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref start, to), a);
            if (length > 8) Unsafe.WriteUnaligned(ref Unsafe.Add(ref start, to + 8), b);
            return;
        }
        Buffer.BlockCopy(arena, from, arena, to, length);
    }
}
