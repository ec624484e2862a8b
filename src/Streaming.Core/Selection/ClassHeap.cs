namespace Streaming.Core.Selection;

/// <summary>
/// The K best candidates of one class: a bounded binary min-heap whose root is the worst kept candidate.
/// A candidate that does not beat the root of a full heap is rejected in O(1); otherwise it replaces the
/// root in O(log K). The kept set is the top K of everything offered under (score desc, id asc), so it
/// does not depend on the order of the offers. An id offered twice counts once (the same image scored
/// twice, as after a restart, has the same score).
/// </summary>
public sealed class ClassHeap
{
    // Kept ids as 64-bit stable hashes, not strings: millions of string references in hash sets made the GC
    // the main cost of filling the heaps. Two ids in one class colliding in 64 bits: about K^2 / 2^65, ~1e-11 at K = 16k.
    private readonly HashSet<ulong> _ids;
    private Candidate[] _heap;

    public ClassHeap(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
        _heap = new Candidate[Math.Min(capacity, 1024)];
        _ids = new HashSet<ulong>();
    }

    public int Capacity { get; }
    public int Count { get; private set; }

    /// <summary>The worst kept candidate (valid when Count > 0).</summary>
    public Candidate Min => _heap[0];

    public bool Offer(float score, string id) => Offer(score, id, score);

    /// <summary>Offers a candidate ranked by <paramref name="score"/>; returns whether it was kept.</summary>
    public bool Offer(float score, string id, float prob)
    {
        var c = new Candidate(score, id, prob);
        if (Count == Capacity && Candidate.Compare(c, _heap[0]) <= 0) return false; // O(1) rejection
        if (!_ids.Add(StableHash.Of(id, 0))) return false;
        if (Count < Capacity)
        {
            EnsureRoom();
            var h = _heap;
            h[Count] = c;
            SiftUp(h, Count);
            Count++;
        }
        else
        {
            var h = _heap;
            _ids.Remove(StableHash.Of(h[0].Id, 0));
            h[0] = c;
            SiftDown(h, 0, Count);
        }
        return true;
    }

    private void EnsureRoom()
    {
        var h = _heap;
        if (Count < h.Length) return;
        var bigger = new Candidate[Math.Min(Capacity, h.Length * 2)];
        Array.Copy(h, bigger, Count);
        _heap = bigger;
    }

    /// <summary>Adds everything another heap of the same class kept (merging disjoint or overlapping parts).</summary>
    public void Merge(ClassHeap other)
    {
        var h = other._heap;
        for (int i = 0; i < other.Count; i++) Offer(h[i].Score, h[i].Id, h[i].Prob);
    }

    /// <summary>The kept candidates, best first (rank 1 first).</summary>
    public Candidate[] Ranked()
    {
        var result = new Candidate[Count];
        Array.Copy(_heap, result, Count);
        Array.Sort(result, (a, b) => Candidate.Compare(b, a));
        return result;
    }

    private static void SiftUp(Candidate[] h, int i)
    {
        var item = h[i];
        while (i > 0)
        {
            int parent = (i - 1) >> 1;
            if (Candidate.Compare(item, h[parent]) >= 0) break;
            h[i] = h[parent];
            i = parent;
        }
        h[i] = item;
    }

    private static void SiftDown(Candidate[] h, int i, int n)
    {
        var item = h[i];
        while (true)
        {
            int child = 2 * i + 1;
            if (child >= n) break;
            if (child + 1 < n && Candidate.Compare(h[child + 1], h[child]) < 0) child++;
            if (Candidate.Compare(h[child], item) >= 0) break;
            h[i] = h[child];
            i = child;
        }
        h[i] = item;
    }
}
