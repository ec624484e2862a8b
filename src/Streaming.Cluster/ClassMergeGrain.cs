using Streaming.Core.Selection;
using Streaming.Cluster.Client;

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
            // Only this bucket's file of the partial: each grain reads its own classes, and the partials are read once over
            // all grains. A candidate below its class's threshold is certainly rejected: its id is never made a string.
            // (The callback runs off the grain's scheduler, inside this awaited call: nothing else touches the heaps meanwhile.)
            var header = await HeapCheckpoint.ReadColumnsAsync(PartialFiles.Bucket(outFolder, name, first), (h, classes, scores, probs, ids) =>
            {
                if (_heaps.Length == 0)
                {
                    int capacity = h.Mode == BalanceMode.UnbalancedZipf ? (int)Math.Min(int.MaxValue, (long)h.K * h.Classes) : h.K;
                    _heaps = Enumerable.Range(0, count).Select(_ => new ClassHeap(capacity)).ToArray();
                }
                for (int i = 0; i < classes.Length; i++)
                {
                    int c = classes.GetValue(i)!.Value - first;
                    if ((uint)c >= (uint)count) continue;
                    float score = scores.GetValue(i)!.Value;
                    if (score < _heaps[c].Threshold) continue;
                    _heaps[c].Offer(score, ids.GetString(i), probs.GetValue(i)!.Value);
                }
            });
            if (_topOne.Length == 0)
            {
                _first = first;
                _topOne = new long[header.Classes];
            }
            for (int c = 0; c < header.TopOne.Length; c++) _topOne[c] += header.TopOne[c];
            _rows += header.Rows;
            _merged.Add(name);
        }
        return new MergeSummary(_merged.Order(StringComparer.Ordinal).ToList(), _rows, _topOne.ToArray());
    }

    public Task DoneAsync()
    {
        DeactivateOnIdle();
        return Task.CompletedTask;
    }

    public Task<ClassKept> KeptAsync(int c)
    {
        var merged = _merged.Order(StringComparer.Ordinal).ToList();
        if (_heaps.Length == 0 || c < _first || c >= _first + _heaps.Length) return Task.FromResult(new ClassKept(c, [], [], [], merged));
        var ranked = _heaps[c - _first].Ranked();
        return Task.FromResult(new ClassKept(c, ranked.Select(r => r.Id).ToArray(), ranked.Select(r => r.Score).ToArray(), ranked.Select(r => r.Prob).ToArray(), merged));
    }
}
