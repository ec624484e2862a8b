using Streaming.Core.Compute;
using Streaming.Core.Options;
using Streaming.Core.Scoring;
using Streaming.Core.Selection;

namespace Streaming.Cluster.Client;

// What grains and their callers say to each other. Every type that crosses a silo boundary or is persisted is
// [GenerateSerializer] with explicit field ids, so that a later version can add fields and still read old state.

/// <summary>
/// One input shard of a job: its path relative to the dataset folder (or absolute), its row count, and where its score
/// shard goes relative to the job's out folder (null: <c>scores/score-NAME.parquet</c>, as a one-machine score names it).
/// </summary>
[GenerateSerializer, Immutable]
[Alias("Streaming.Cluster.ShardInput")]
public sealed record ShardInput([property: Id(0)] string Input, [property: Id(1)] long Rows, [property: Id(2)] string? ScoreFile = null);

/// <summary>
/// A scoring job: the teacher, the data and every knob the score shards' bytes and D-hat depend on (the scoring's
/// <see cref="ScoringSpec"/> less what each worker chooses for itself: its decode workers and device). Its key is a hash
/// of all of them (<see cref="JobKeys"/>), so the same command from any machine attaches to the same job.
/// </summary>
[GenerateSerializer, Immutable]
[Alias("Streaming.Cluster.Client.JobSpec")]
public sealed record JobSpec
{
    [Id(0)] public string Key { get; init; } = "";
    [Id(1)] public required string Teacher { get; init; }
    [Id(2)] public required string TeacherSha256 { get; init; }
    [Id(3)] public required string Data { get; init; }
    [Id(4)] public required string DataManifestSha256 { get; init; }
    [Id(5)] public required string Out { get; init; }
    /// <summary>P' asked for (a worker clamps it to its teacher's classes, as every host does).</summary>
    [Id(6)] public int TopP { get; init; }
    [Id(7)] public int Batch { get; init; }
    /// <summary>libtorch threads, resolved: every worker scores with this many, so that its bytes match one machine's.</summary>
    [Id(8)] public int Threads { get; init; }
    /// <summary>The kernels the job pins (<c>native</c>: whatever the workers run, as long as they agree).</summary>
    [Id(9)] public required string Isa { get; init; }
    [Id(10)] public bool ChannelsLast { get; init; }
    [Id(11)] public int? K { get; init; }
    [Id(12)] public int P { get; init; }
    [Id(13)] public required string Balance { get; init; }
    [Id(14)] public ulong Seed { get; init; }
    [Id(15)] public double LeaseSeconds { get; init; }
    [Id(16)] public IReadOnlyList<ShardInput> Shards { get; init; } = [];

    /// <summary>The job's knobs from a scoring spec: threads resolved, the ISA by the name this process runs.</summary>
    public static JobSpec For(ScoringSpec scoring, string isa, string teacher, string teacherSha256, string data, string dataManifestSha256, string output,
        double leaseSeconds, IReadOnlyList<ShardInput> shards) => new()
    {
        Teacher = teacher, TeacherSha256 = teacherSha256, Data = data, DataManifestSha256 = dataManifestSha256, Out = output,
        TopP = scoring.TopP, Batch = scoring.Batch, Threads = scoring.Compute.ResolvedThreads, Isa = isa, ChannelsLast = scoring.Compute.ChannelsLast,
        K = scoring.K, P = scoring.P, Balance = BalanceModes.Name(scoring.Balance), Seed = scoring.Seed, LeaseSeconds = leaseSeconds, Shards = shards,
    };

    /// <summary>The scoring spec a worker runs the job with: the job's knobs, and the worker's own decode workers and device.</summary>
    public ScoringSpec Scoring(int decodeWorkers, string device) => new ScoringSpec
    {
        TopP = TopP, Batch = Batch, K = K, P = P, Balance = BalanceModes.Parse(Balance), Seed = Seed, DecodeWorkers = decodeWorkers,
        Compute = new ComputeSpec { Threads = Threads, Device = device, Isa = KernelIsas.Parse(Isa, "the job's isa"), ChannelsLast = ChannelsLast },
    }.Validated();
}

/// <summary>A worker as a job sees it: who, and which kernels it runs (a job pins one set on every worker).</summary>
[GenerateSerializer, Immutable]
[Alias("Streaming.Cluster.WorkerInfo")]
public sealed record WorkerInfo(
    [property: Id(0)] string Id,
    [property: Id(1)] string Host,
    [property: Id(2)] int Pid,
    [property: Id(3)] string Isa,
    [property: Id(4)] string KernelKey,
    [property: Id(5)] string ComputeJson,
    [property: Id(6)] bool ChannelsLast = true);

/// <summary>
/// A shard leased to one worker until <see cref="ExpiresUtc"/>; its commit must name <see cref="Epoch"/>. It carries the
/// shard's input and score file, so that a worker needs no newer spec for shards appended since it read one.
/// </summary>
[GenerateSerializer, Immutable]
[Alias("Streaming.Cluster.Lease")]
public sealed record Lease([property: Id(0)] int Shard, [property: Id(1)] string Input, [property: Id(2)] long Epoch, [property: Id(3)] DateTime ExpiresUtc,
    [property: Id(4)] string? ScoreFile = null);

/// <summary>The answer to a lease request: shards, or why this worker may not work on the job, or that nothing is left.</summary>
[GenerateSerializer, Immutable]
[Alias("Streaming.Cluster.LeaseAnswer")]
public sealed record LeaseAnswer([property: Id(0)] IReadOnlyList<Lease> Leases, [property: Id(1)] string? Refused, [property: Id(2)] bool NothingLeft);

/// <summary>A worker's report that a leased shard is finished: its score shard (relative to the job's out folder) and hash, or its error.</summary>
[GenerateSerializer, Immutable]
[Alias("Streaming.Cluster.ShardDone")]
public sealed record ShardDone(
    [property: Id(0)] int Shard,
    [property: Id(1)] long Epoch,
    [property: Id(2)] string? ScoreFile,
    [property: Id(3)] string? Sha256,
    [property: Id(4)] long Rows,
    [property: Id(5)] long Quarantined,
    [property: Id(6)] string? Error);

/// <summary>A shard and the lease epoch under which it was committed.</summary>
[GenerateSerializer, Immutable]
[Alias("Streaming.Cluster.ShardEpoch")]
public sealed record ShardEpoch([property: Id(0)] int Shard, [property: Id(1)] long Epoch);

/// <summary>A worker's partial selector (a heaps checkpoint, Arrow IPC with LZ4) over the shards it committed.</summary>
[GenerateSerializer, Immutable]
[Alias("Streaming.Cluster.PartialInfo")]
public sealed record PartialInfo([property: Id(0)] string Worker, [property: Id(1)] string File, [property: Id(2)] IReadOnlyList<ShardEpoch> Covers);

/// <summary>A shard's record in a job.</summary>
[GenerateSerializer]
[Alias("Streaming.Cluster.ShardRecord")]
public sealed class ShardRecord
{
    [Id(0)] public ShardStatus Status;
    [Id(1)] public string? Worker;
    [Id(2)] public long Epoch;
    [Id(3)] public DateTime ExpiresUtc;
    [Id(4)] public string? ScoreFile;
    [Id(5)] public string? Sha256;
    [Id(6)] public long Rows;
    [Id(7)] public long Quarantined;
    [Id(8)] public string? Error;
}


public enum ShardStatus
{
    Pending,
    Leased,
    Done,
    Failed,
}

/// <summary>One worker's share of a job, for progress.</summary>
[GenerateSerializer, Immutable]
[Alias("Streaming.Cluster.WorkerProgress")]
public sealed record WorkerProgress(
    [property: Id(0)] string Worker,
    [property: Id(1)] int Leased,
    [property: Id(2)] int Shards,
    [property: Id(3)] long Images,
    [property: Id(4)] double ImagesPerSecond,
    [property: Id(5)] DateTime LastSeenUtc);

/// <summary>A job's progress.</summary>
[GenerateSerializer, Immutable]
[Alias("Streaming.Cluster.JobStatus")]
public sealed record JobStatus(
    [property: Id(0)] string Key,
    [property: Id(1)] int Shards,
    [property: Id(2)] int Done,
    [property: Id(3)] int Failed,
    [property: Id(4)] int Leased,
    [property: Id(5)] int Pending,
    [property: Id(6)] long Images,
    [property: Id(7)] double ImagesPerSecond,
    [property: Id(8)] IReadOnlyList<WorkerProgress> Workers,
    [property: Id(9)] bool Finished,
    [property: Id(10)] string Out,
    [property: Id(11)] IReadOnlyList<string> Refusals)
{
    public bool Complete => Done + Failed == Shards;
}

/// <summary>Everything the submitter needs to write a job's outputs once every shard is done.</summary>
[GenerateSerializer]
[Alias("Streaming.Cluster.JobRecord")]
public sealed record JobRecord(
    [property: Id(0)] JobSpec Spec,
    [property: Id(1)] IReadOnlyList<ShardRecord> Shards,
    [property: Id(2)] IReadOnlyList<PartialInfo> Partials,
    [property: Id(3)] string? ComputeJson);

/// <summary>What a merge grain holds after merging partials: which ones, and their summed row and top-1 counts.</summary>
[GenerateSerializer]
[Alias("Streaming.Cluster.MergeSummary")]
public sealed record MergeSummary([property: Id(0)] IReadOnlyList<string> Merged, [property: Id(1)] long Rows, [property: Id(2)] long[] TopOne);

/// <summary>One class's kept candidates, best first, with the partials they were merged from.</summary>
[GenerateSerializer, Immutable]
[Alias("Streaming.Cluster.ClassKept")]
public sealed record ClassKept(
    [property: Id(0)] int Class,
    [property: Id(1)] string[] Ids,
    [property: Id(2)] float[] Scores,
    [property: Id(3)] float[] Probs,
    [property: Id(4)] IReadOnlyList<string> Merged);
