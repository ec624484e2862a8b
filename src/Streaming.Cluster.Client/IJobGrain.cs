namespace Streaming.Cluster.Client;

/// <summary>
/// A scoring job: its shards, leased to workers with an expiry and an epoch; commits fenced by the epoch; partial
/// selectors registered by workers. Keyed by <see cref="JobSpec.Key"/>.
/// </summary>
[Alias("Streaming.Cluster.IJobGrain")]
public interface IJobGrain : IGrainWithStringKey
{
    /// <summary>Creates the job, or attaches to it when it exists with the same spec; returns its status.</summary>
    Task<JobStatus> SubmitAsync(JobSpec spec);

    Task<JobSpec?> SpecAsync();

    /// <summary>Up to <paramref name="max"/> shards for this worker (expired leases are taken back first), or why not.</summary>
    Task<LeaseAnswer> LeaseAsync(WorkerInfo worker, int max);

    /// <summary>Extends the worker's leases; returns the shards among <paramref name="held"/> it no longer holds.</summary>
    Task<IReadOnlyList<int>> HeartbeatAsync(string worker, IReadOnlyList<ShardEpoch> held);

    /// <summary>Records a finished shard; null when accepted, else why it was refused (a stale epoch: the lease moved).</summary>
    Task<string?> CommitAsync(string worker, ShardDone done);

    /// <summary>Hands back every lease the worker holds (a worker stopping with SIGTERM).</summary>
    Task<int> ReleaseAsync(string worker);

    /// <summary>
    /// Records a worker's latest partial selector (it supersedes the worker's earlier ones). False once the job is
    /// finished: its D-hat is written and the partial will never be read, so its writer removes it.
    /// </summary>
    Task<bool> RegisterPartialAsync(PartialInfo partial);

    /// <summary>Puts committed shards whose score shards were found missing or not as recorded back to pending.</summary>
    Task RequeueAsync(IReadOnlyList<int> shards);

    Task<JobStatus?> StatusAsync();

    Task<JobRecord?> RecordAsync();

    /// <summary>Marks the job's outputs written; the job leaves the list of active jobs.</summary>
    Task FinishAsync();

    /// <summary>Adds shards to an open-ended job (the daemon's); one already in it (same input and score file) keeps its index. Returns each one's index.</summary>
    Task<IReadOnlyList<int>> AppendAsync(IReadOnlyList<ShardInput> shards);

    /// <summary>A worker will not run this job (its paths lie outside the worker's roots, say): the job's status shows why.</summary>
    Task RefuseAsync(string worker, string reason);

    /// <summary>The records of these shards (the daemon follows its shards' commits).</summary>
    Task<IReadOnlyList<ShardRecord>> OutcomesAsync(IReadOnlyList<int> shards);
}
