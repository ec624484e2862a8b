using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Streaming.Core.Selection;
using Streaming.Engine.Scoring;
using Streaming.Engine.Scoring.Stages;
using Streaming.Models;
using Streaming.Models.Compute;
using Streaming.Models.Teachers;

namespace Streaming.Cluster;

/// <summary>Opens a job's teacher on a worker (tests give a deterministic stand-in).</summary>
public interface ITeacherSource
{
    ITeacher Open(string path, string device, int threads);
}

/// <summary>The real teachers: a safetensors, .pt or ONNX file on the shared file system.</summary>
public sealed class FileTeacherSource : ITeacherSource
{
    public ITeacher Open(string path, string device, int threads) => Teachers.Open(Teachers.Resolve(path), TorchDevice.Resolve(device), null, threads);
}

/// <summary>A worker's own settings: none of them changes a score shard's bytes (the job's spec fixes those).</summary>
public sealed record WorkerOptions
{
    public string Id { get; init; } = $"{Environment.MachineName}-{Environment.ProcessId}-{System.Security.Cryptography.RandomNumberGenerator.GetHexString(4, lowercase: true)}";
    public string Device { get; init; } = "cpu";
    public int DecodeWorkers { get; init; } = Math.Max(1, Environment.ProcessorCount);
    /// <summary>Shards leased ahead of the one being scored, so that the graph never waits for a lease.</summary>
    public int Prefetch { get; init; } = 4;
    /// <summary>A partial selector is checkpointed and registered after this many commits (and when the job's work ends).</summary>
    public int PartialEveryShards { get; init; } = 32;
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
                jobs = await ClusterHosting.RetryAsync(registry.ActiveAsync, options.Patience, stop, log, "listing jobs").ConfigureAwait(false);
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

    private sealed record Held(Lease Lease, ShardInput Input);

    /// <summary>Partials of this process are named by its id, a random run id and a counter: never twice the same folder.</summary>
    private readonly string _run = System.Security.Cryptography.RandomNumberGenerator.GetHexString(6, lowercase: true);
    private int _partials;

    /// <summary>Leases and scores the job's shards until none is left for this worker; then checkpoints the partial.</summary>
    private async Task<JobOutcome> RunJobAsync(IJobGrain job, CancellationToken stop)
    {
        var spec = await ClusterHosting.RetryAsync(job.SpecAsync, options.Patience, stop, log, "reading a job").ConfigureAwait(false);
        if (spec is null) return JobOutcome.Idle;
        using var kernels = await Kernels.AcquireAsync(spec.Threads, spec.ChannelsLast, stop).ConfigureAwait(false);
        int threads = kernels.Threads;
        var compute = Kernels.Current(threads);
        var me = new WorkerInfo(options.Id, Environment.MachineName, Environment.ProcessId, compute.Isa, Kernels.KernelKey(compute), JsonSerializer.Serialize(compute), compute.ChannelsLast);
        // Ask before opening the teacher: a worker the job refuses (other kernels) should learn it at once.
        var first = await ClusterHosting.RetryAsync(() => job.LeaseAsync(me, options.Prefetch), options.Patience, stop, log, "leasing").ConfigureAwait(false);
        if (first.Refused is string why)
        {
            if (_refusedLogged.Add(spec.Key + why)) log.LogError("job {Job} refused this worker: {Why}", spec.Key, why);
            return JobOutcome.Refused;
        }
        if (first.Leases.Count == 0) return JobOutcome.Idle;

        log.LogInformation("job {Job}: scoring shards of {Data}", spec.Key, spec.Data);
        using var teacher = teachers.Open(spec.Teacher, options.Device, threads);
        int topP = Math.Min(spec.TopP, teacher.Spec.NumClasses);
        var selector = spec.K is int k ? new Selector(teacher.Spec.NumClasses, k, spec.P, BalanceModes.Parse(spec.Balance), spec.Seed) : null;
        var covers = new List<ShardEpoch>();
        int sincePartial = 0;
        var held = new ConcurrentDictionary<int, Held>();
        using var jobStop = CancellationTokenSource.CreateLinkedTokenSource(stop);

        async ValueTask<bool> Admit(ShardCommit c)
        {
            var h = (Held)c.Shard.Tag!;
            var done = new ShardDone(h.Lease.Shard, h.Lease.Epoch, Path.GetRelativePath(spec.Out, c.ScoreFile), c.Sha256, c.Rows, c.Quarantined, null);
            string? refused;
            try
            {
                refused = await ClusterHosting.RetryAsync(() => job.CommitAsync(options.Id, done), options.Patience, CancellationToken.None, log, $"committing shard {h.Input.Input}").ConfigureAwait(false);
            }
            catch (Exception e) when (ClusterHosting.Transient(e))
            {
                refused = $"the job could not be reached ({e.Message}); the lease will expire and another worker redoes it";
            }
            held.TryRemove(KeyValuePair.Create(h.Lease.Shard, h));
            if (refused is not null)
            {
                log.LogWarning("shard {Input}: commit refused: {Why}", h.Input.Input, refused);
                return false;
            }
            covers.Add(new ShardEpoch(h.Lease.Shard, h.Lease.Epoch));
            Interlocked.Increment(ref _committed);
            return true;
        }

        async ValueTask Committed(ShardCommit c)
        {
            if (selector is not null && ++sincePartial >= options.PartialEveryShards)
            {
                await WritePartialAsync(job, spec, selector, covers).ConfigureAwait(false);
                sincePartial = 0;
            }
        }

        async ValueTask Failed(ShardJob shard, string error)
        {
            var h = (Held)shard.Tag!;
            held.TryRemove(KeyValuePair.Create(h.Lease.Shard, h));
            var done = new ShardDone(h.Lease.Shard, h.Lease.Epoch, null, null, 0, 0, error);
            try
            {
                await ClusterHosting.RetryAsync(() => job.CommitAsync(options.Id, done), options.Patience, CancellationToken.None, log, "reporting a failed shard").ConfigureAwait(false);
            }
            catch (Exception e) when (ClusterHosting.Transient(e))
            {
                log.LogWarning("shard {Input} failed ({Error}) and the job could not be told: {Why}", h.Input.Input, error, e.Message);
            }
        }

        Directory.CreateDirectory(Path.Combine(spec.Out, ScoringManifest.ScoresFolder));
        var sink = new ShardSink(s => Path.Combine(spec.Out, ((Held)s.Tag!).Input.ScoreFile ?? Path.Combine(ScoringManifest.ScoresFolder, ScoringManifest.ScoreFileName(s.Input))),
            selector, Committed, Failed, admit: Admit);
        var graph = new ScoreGraph(teacher, topP, spec.Batch, options.DecodeWorkers, sink, jobStop.Token);
        var beat = HeartbeatAsync(job, spec, held, jobStop.Token);
        bool stoppedBySignal = false;
        Exception? failed = null;
        try
        {
            var next = first;
            while (true)
            {
                foreach (var lease in next.Leases)
                {
                    var h = new Held(lease, new ShardInput(lease.Input, 0, lease.ScoreFile));
                    held[lease.Shard] = h;
                    await graph.SendShardAsync(Path.Combine(spec.Data, lease.Input), lease.Input, h).ConfigureAwait(false);
                }
                if (stop.IsCancellationRequested) break;
                // Keep Prefetch shards ahead of the graph: ask for what is missing once some were committed.
                while (held.Count >= options.Prefetch && !stop.IsCancellationRequested && !graph.Completion.IsCompleted)
                    await Task.Delay(20, CancellationToken.None).ConfigureAwait(false);
                if (stop.IsCancellationRequested || graph.Completion.IsCompleted) break;
                next = await ClusterHosting.RetryAsync(() => job.LeaseAsync(me, options.Prefetch - held.Count), options.Patience, stop, log, "leasing").ConfigureAwait(false);
                if (next.Refused is not null || next.Leases.Count == 0)
                {
                    if (held.IsEmpty) break;
                    await Task.Delay(200, CancellationToken.None).ConfigureAwait(false);
                    next = new LeaseAnswer([], null, false);
                }
            }
        }
        catch (Exception) when (stop.IsCancellationRequested)
        {
            // SIGTERM while sending a shard: the graph stops taking shards (a cancellation, or "stopped taking shards").
        }
        finally
        {
            if (stop.IsCancellationRequested)
            {
                // SIGTERM: stop now; the shard in inference finishes, nothing half done is committed.
                stoppedBySignal = true;
                jobStop.Cancel();
            }
            else
            {
                graph.Complete();
            }
            try
            {
                await graph.WaitAsync().ConfigureAwait(false);
            }
            catch (Exception e)
            {
                // A graph that failed (a write error, the teacher) is this worker's problem, not the shards': hand
                // them back at once so that another worker takes them, rather than renewing them for ever.
                if (!(e is OperationCanceledException || stoppedBySignal))
                {
                    failed = e;
                    log.LogError("job {Job}: the scoring graph failed: {Error}; handing back its leases", spec.Key, e.Message);
                }
            }
            jobStop.Cancel();
            try
            {
                await beat.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }
        if (stoppedBySignal || failed is not null)
        {
            try
            {
                int released = await ClusterHosting.RetryAsync(() => job.ReleaseAsync(options.Id), TimeSpan.FromSeconds(10), CancellationToken.None, log, "handing back leases").ConfigureAwait(false);
                log.LogInformation("job {Job}: handed back {Released} leases", spec.Key, released);
            }
            catch (Exception e) when (ClusterHosting.Transient(e))
            {
                log.LogWarning("job {Job}: leases not handed back ({Error}); they expire instead", spec.Key, e.Message);
            }
        }
        if (selector is not null && covers.Count > 0 && sincePartial > 0) await WritePartialAsync(job, spec, selector, covers).ConfigureAwait(false);
        if (failed is not null) throw new InvalidOperationException($"the scoring graph failed: {failed.Message}", failed);
        return JobOutcome.Worked;
    }

    /// <summary>Renews the leases of the shards in flight, a third of the lease time apart.</summary>
    private async Task HeartbeatAsync(IJobGrain job, JobSpec spec, ConcurrentDictionary<int, Held> held, CancellationToken stop)
    {
        var every = TimeSpan.FromSeconds(Math.Max(0.2, spec.LeaseSeconds / 3));
        while (!stop.IsCancellationRequested)
        {
            await Task.Delay(every, stop).ConfigureAwait(false);
            var mine = held.Values.Select(h => new ShardEpoch(h.Lease.Shard, h.Lease.Epoch)).ToList();
            if (mine.Count == 0) continue;
            try
            {
                var lost = await job.HeartbeatAsync(options.Id, mine).ConfigureAwait(false);
                foreach (int s in lost) log.LogWarning("job {Job}: the lease on shard {Shard} was lost; its commit will be refused", spec.Key, s);
            }
            catch (Exception e) when (ClusterHosting.Transient(e))
            {
                log.LogWarning("job {Job}: heartbeat failed: {Error}", spec.Key, e.Message);
            }
        }
    }

    /// <summary>Checkpoints the partial selector (Arrow IPC, LZ4, a file a bucket of classes; a new folder each time) and registers it with the job.</summary>
    private async Task WritePartialAsync(IJobGrain job, JobSpec spec, Selector selector, List<ShardEpoch> covers)
    {
        string name = Path.Combine(PartialsFolder, $"{options.Id}-{_run}-{Interlocked.Increment(ref _partials):D6}");
        Directory.CreateDirectory(Path.Combine(spec.Out, PartialsFolder));
        await PartialFiles.WriteAsync(spec.Out, name, selector).ConfigureAwait(false);
        var info = new PartialInfo(options.Id, name, covers.ToList());
        try
        {
            await ClusterHosting.RetryAsync(async () =>
            {
                await job.RegisterPartialAsync(info).ConfigureAwait(false);
                return true;
            }, options.Patience, CancellationToken.None, log, "registering a partial").ConfigureAwait(false);
        }
        catch (Exception e) when (ClusterHosting.Transient(e))
        {
            // Not lost: the submitter reads the score shards a registered partial does not cover.
            log.LogWarning("job {Job}: partial {Partial} not registered: {Error}", spec.Key, name, e.Message);
        }
    }

    public const string PartialsFolder = "partials";

}
