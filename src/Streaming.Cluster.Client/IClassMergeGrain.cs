namespace Streaming.Cluster.Client;

/// <summary>
/// The per-class merge of a job's partial selectors, for one bucket of classes (key <c>JOB/BUCKET</c>). Merging is
/// idempotent per partial (a partial delivered twice changes nothing) and per image id (the heaps' own rule).
/// </summary>
[Alias("Streaming.Cluster.IClassMergeGrain")]
public interface IClassMergeGrain : IGrainWithStringKey
{
    /// <summary>Merges the partials (files under <paramref name="outFolder"/>) into classes <paramref name="first"/> .. first + count - 1.</summary>
    [ResponseTimeout("00:30:00")] // reading many partials takes longer than a call's usual 10 s
    Task<MergeSummary> MergeAsync(string outFolder, int first, int count, IReadOnlyList<string> partials);

    Task<ClassKept> KeptAsync(int c);

    /// <summary>The kept sets were fetched: the grain goes (it holds up to K candidates a class).</summary>
    Task DoneAsync();
}
