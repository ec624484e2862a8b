using System.Text.Json;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Streaming.Core.Selection;
using Streaming.Engine.Scoring;
using Streaming.Engine.Scoring.Stages;
using Streaming.Models;
using Streaming.Models.Compute;
using Streaming.Core.Options;
using Streaming.Cluster.Client;

namespace Streaming.Cluster;

/// <summary>A worker's own settings: none of them changes a score shard's bytes (the job's spec fixes those).</summary>
public sealed record WorkerOptions
{
    public string Id { get; init; } = $"{Environment.MachineName}-{Environment.ProcessId}-{System.Security.Cryptography.RandomNumberGenerator.GetHexString(4, lowercase: true)}";
    public string Device { get; init; } = Knobs.Device.Default;
    public int DecodeWorkers { get; init; } = Knobs.DecodeWorkers.Default;
    /// <summary>Shards leased ahead of the one being scored, so that the graph never waits for a lease.</summary>
    public int Prefetch { get; init; } = 4;
    /// <summary>A partial selector is checkpointed and registered after this many commits (and when the job's work ends).</summary>
    public int PartialEveryShards { get; init; } = 32;
    /// <summary>Where a job's teacher and data may lie (<c>--data-root</c>, repeatable); none: anywhere, on a loopback cluster only.</summary>
    public IReadOnlyList<string> DataRoots { get; init; } = [];
    /// <summary>Where a job's output may go (<c>--out-root</c>, repeatable); none: anywhere, on a loopback cluster only.</summary>
    public IReadOnlyList<string> OutRoots { get; init; } = [];

    /// <summary>Why this worker will not run <paramref name="spec"/> (a path outside its roots), or null.</summary>
    public string? Refusal(JobSpec spec) =>
        PathRoots.Refusal("its teacher", spec.Teacher, DataRoots, "--data-root")
        ?? PathRoots.Refusal("its data", spec.Data, DataRoots, "--data-root")
        ?? PathRoots.Refusal("its output", spec.Out, OutRoots, "--out-root");

    /// <summary>How long a commit or lease call may keep failing (a silo died, the database restarts) before the shard is left to expire.</summary>
    public TimeSpan Patience { get; init; } = TimeSpan.FromSeconds(120);
}

/// <summary>
/// A <c>streaming worker</c>: finds active jobs, leases their shards and runs the same scoring graph as <c>score</c> and
/// the daemon on them. Only the sink differs: a score shard is written under a temporary name and renamed (as on one
/// machine), then committed to the job with its lease's epoch and its hash; only a commit the job accepts puts the
/// shard's rows into this worker's partial selector. Heartbeats renew the leases. On SIGTERM the worker stops taking
/// shards, hands its leases back and checkpoints its partial.
/// </summary>
public sealed class ScoringWorker(IGrainFactory grains, WorkerOptions options, ITeacherSource teachers, ILogger<ScoringWorker> log) : BackgroundService
{
    private readonly HashSet<string> _refusedLogged = new(StringComparer.Ordinal);

    /// <summary>Shards this worker committed, over its whole life.</summary>
    public int Committed => _committed;
    private int _committed;

    protected override async Task ExecuteAsync(CancellationToken stop)
    {
        log.LogInformation("worker {Worker} ready (device {Device}, isa {Isa})", options.Id, options.Device, Kernels.Current().Isa);
        var registry = grains.GetGrain<IJobRegistryGrain>(IJobRegistryGrain.Key);
        var refusedUntil = new Dictionary<string, DateTime>(StringComparer.Ordinal);
        while (!stop.IsCancellationRequested)
        {
            IReadOnlyList<string> jobs;
            try
            {
                jobs = await ClusterClient.RetryAsync(registry.ActiveAsync, options.Patience, stop, log, "listing jobs").ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e) when (!stop.IsCancellationRequested)
            {
                // The cluster is away longer than the patience (a long database outage): keep waiting, do not stop.
                log.LogError("listing jobs: {Error}; trying again in 10 s", e.Message);
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(10), stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                continue;
            }
            bool worked = false;
            foreach (var key in jobs)
            {
                if (stop.IsCancellationRequested) break;
                if (refusedUntil.TryGetValue(key, out var until) && until > DateTime.UtcNow) continue;
                try
                {
                    var outcome = await RunJobAsync(grains.GetGrain<IJobGrain>(key), stop).ConfigureAwait(false);
                    if (outcome == JobOutcome.Refused) refusedUntil[key] = DateTime.UtcNow.AddSeconds(10);
                    worked |= outcome == JobOutcome.Worked;
                }
                catch (Exception e) when (stop.IsCancellationRequested)
                {
                    log.LogDebug("job {Job}: stopped: {Error}", key, e.Message);
                }
                catch (Exception e)
                {
                    // A job this worker cannot run (its teacher or data unreadable here, say): others may; try later.
                    log.LogError("job {Job}: {Error}", key, e.Message);
                    refusedUntil[key] = DateTime.UtcNow.AddSeconds(10);
                }
            }
            if (!worked)
            {
                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(500), stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }
        log.LogInformation("worker {Worker} stopped: {Committed} shards committed", options.Id, _committed);
    }

    private enum JobOutcome
    {
        Idle,
        Worked,
        Refused,
    }

    /// <summary>Partials of this process are named by its id, a random run id and a counter: never twice the same folder.</summary>
    private readonly string _run = System.Security.Cryptography.RandomNumberGenerator.GetHexString(6, lowercase: true);
    private int _partials;

    /// <summary>Leases and scores the job's shards until none is left for this worker (<see cref="WorkerJob"/>).</summary>
    private async Task<JobOutcome> RunJobAsync(IJobGrain job, CancellationToken stop)
    {
        var spec = await ClusterClient.RetryAsync(job.SpecAsync, options.Patience, stop, log, "reading a job").ConfigureAwait(false);
        if (spec is null) return JobOutcome.Idle;
        if (options.Refusal(spec) is string outside)
        {
            // Said once, here and in the job's status: the submitter and 'cluster status' show it.
            if (_refusedLogged.Add(spec.Key + outside))
            {
                log.LogError("job {Job} refused: {Why}", spec.Key, outside);
                await ClusterClient.RetryAsync(async () => { await job.RefuseAsync(options.Id, outside).ConfigureAwait(false); return true; }, options.Patience, stop, log, "refusing a job").ConfigureAwait(false);
            }
            return JobOutcome.Refused;
        }
        // The job's threads on this worker's kernels and layout: the job refuses a worker with other kernels or layout.
        var compute = Kernels.Current(spec.Threads);
        var me = new WorkerInfo(options.Id, Environment.MachineName, Environment.ProcessId, compute.Isa, Kernels.KernelKey(compute), JsonSerializer.Serialize(compute), compute.ChannelsLast);
        // Ask before opening the teacher: a worker the job refuses (other kernels) should learn it at once.
        var first = await ClusterClient.RetryAsync(() => job.LeaseAsync(me, options.Prefetch), options.Patience, stop, log, "leasing").ConfigureAwait(false);
        if (first.Refused is string why)
        {
            if (_refusedLogged.Add(spec.Key + why)) log.LogError("job {Job} refused this worker: {Why}", spec.Key, why);
            return JobOutcome.Refused;
        }
        if (first.Leases.Count == 0) return JobOutcome.Idle;
        var work = new WorkerJob(job, spec, options, log, (s, selector, covers) => WritePartialAsync(job, s, selector, covers));
        try
        {
            await work.RunAsync(me, first, teachers, stop).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Add(ref _committed, work.Committed);
        }
        return JobOutcome.Worked;
    }

    /// <summary>Checkpoints the partial selector (Arrow IPC, LZ4, a file a bucket of classes; a new folder each time) and registers it with the job.</summary>
    private async Task WritePartialAsync(IJobGrain job, JobSpec spec, Selector selector, IReadOnlyList<ShardEpoch> covers)
    {
        string name = Path.Combine(PartialFiles.Folder, $"{options.Id}-{_run}-{Interlocked.Increment(ref _partials):D6}");
        Directory.CreateDirectory(Path.Combine(spec.Out, PartialFiles.Folder));
        await PartialFiles.WriteAsync(spec.Out, name, selector).ConfigureAwait(false);
        var info = new PartialInfo(options.Id, name, covers);
        bool registered = false;
        try
        {
            registered = await ClusterClient.RetryAsync(() => job.RegisterPartialAsync(info), options.Patience, CancellationToken.None, log, "registering a partial").ConfigureAwait(false);
        }
        catch (Exception e) when (ClusterClient.Transient(e))
        {
            // Not lost: the submitter reads the score shards a registered partial does not cover.
            log.LogWarning("job {Job}: partial {Partial} not registered: {Error}", spec.Key, name, e.Message);
        }
        // Unregistered (or the job already finished and cleaned up): nothing will ever read it, so it goes now.
        if (!registered) RemoveUnread(spec.Out, name);
    }

    private void RemoveUnread(string outFolder, string name)
    {
        try
        {
            string folder = Path.Combine(outFolder, name), root = Path.Combine(outFolder, PartialFiles.Folder);
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
            if (Directory.Exists(root) && !Directory.EnumerateFileSystemEntries(root).Any()) Directory.Delete(root);
        }
        catch (IOException e)
        {
            log.LogWarning("partial {Partial} not removed: {Error}", name, e.Message);
        }
    }


}
