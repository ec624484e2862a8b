using Streaming.Core.Selection;

namespace Streaming.Cluster;

/// <summary>
/// Merges workers' partial selectors for one bucket of classes. Each partial is a heaps checkpoint on the shared file
/// system; this grain reads it and folds its bucket's classes into its own heaps with the heaps' associative,
/// commutative merge (idempotent per image id). A partial it has merged is skipped if delivered again. Nothing here is
/// persisted: a grain that lost its silo comes back empty, the submitter sees that the partials it merged are not all
/// there (<see cref="ClassKept.Merged"/>) and delivers them again.
/// </summary>
public sealed class ClassMergeGrain : Grain, IClassMergeGrain
{
    private readonly HashSet<string> _merged = new(StringComparer.Ordinal);
    private ClassHeap[] _heaps = [];
    private int _first;
    private long _rows;
    private long[] _topOne = [];

    public async Task<MergeSummary> MergeAsync(string outFolder, int first, int count, IReadOnlyList<string> partials)
    {
        foreach (var name in partials)
        {
            if (_merged.Contains(name)) continue;
            var part = await HeapCheckpoint.ReadAsync(Path.Combine(outFolder, name));
            if (_heaps.Length == 0)
            {
                int capacity = part.Mode == BalanceMode.UnbalancedZipf ? (int)Math.Min(int.MaxValue, (long)part.K * part.Classes) : part.K;
                _heaps = Enumerable.Range(0, count).Select(_ => new ClassHeap(capacity)).ToArray();
                _first = first;
                _topOne = new long[part.Classes];
            }
            for (int c = first; c < first + count; c++)
                foreach (var e in part.Kept(c))
                    _heaps[c - first].Offer(e.Score, e.Id, e.Prob);
            var top = part.TopOneCounts();
            for (int c = 0; c < top.Length; c++) _topOne[c] += top[c];
            _rows += part.Rows;
            _merged.Add(name);
        }
        return new MergeSummary(_merged.Order(StringComparer.Ordinal).ToList(), _rows, _topOne);
    }

    public Task<ClassKept> KeptAsync(int c)
    {
        var merged = _merged.Order(StringComparer.Ordinal).ToList();
        if (_heaps.Length == 0 || c < _first || c >= _first + _heaps.Length) return Task.FromResult(new ClassKept(c, [], [], [], merged));
        var ranked = _heaps[c - _first].Ranked();
        return Task.FromResult(new ClassKept(c, ranked.Select(r => r.Id).ToArray(), ranked.Select(r => r.Score).ToArray(), ranked.Select(r => r.Prob).ToArray(), merged));
    }
}
