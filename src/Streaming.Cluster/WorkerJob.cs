using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Streaming.Core.Selection;
using Streaming.Engine.Scoring;
using Streaming.Engine.Scoring.Stages;
using Streaming.Cluster.Client;

namespace Streaming.Cluster;

/// <summary>A shard this worker holds a lease on, as it travels through the session.</summary>
internal sealed record Held(Lease Lease, ShardInput Input);

/// <summary>
/// One job on one worker: a <see cref="ScoringSession{TTag}"/> whose host commits through the job's leases. A score
/// shard is written under a temporary name and renamed (as on one machine), then committed to the job with its lease's
/// epoch and its hash; only a commit the job accepts puts the shard's rows into this worker's partial selector
/// (fencing). Heartbeats renew the leases; every <see cref="WorkerOptions.PartialEveryShards"/> commits the partial is
/// checkpointed and registered.
/// </summary>
internal sealed class WorkerJob(IJobGrain job, JobSpec spec, WorkerOptions options, ILogger log, Func<JobSpec, Selector, IReadOnlyList<ShardEpoch>, Task> writePartial)
    : IScoringHost<Held>
{
    private readonly ConcurrentDictionary<int, Held> _held = new();
    private readonly List<ShardEpoch> _covers = [];
    private int _sincePartial, _committed;
    private Selector? _selector;

    /// <summary>Shards this job committed here.</summary>
    public int Committed => _committed;

    public string ScoreFile(ShardJob shard, Held tag) =>
        Path.Combine(spec.Out, tag.Input.ScoreFile ?? Path.Combine(ScoringManifest.ScoresFolder, ScoringManifest.ScoreFileName(shard.Input)));

    /// <summary>The commit, fenced by the lease's epoch: a refused one keeps the shard's rows out of the partial.</summary>
    public async ValueTask<bool> AdmitAsync(ShardCommit commit, Held h)
    {
        var done = new ShardDone(h.Lease.Shard, h.Lease.Epoch, Path.GetRelativePath(spec.Out, commit.ScoreFile), commit.Sha256, commit.Rows, commit.Quarantined, null);
        string? refused;
        try
        {
            refused = await ClusterClient.RetryAsync(() => job.CommitAsync(options.Id, done), options.Patience, CancellationToken.None, log, $"committing shard {h.Input.Input}").ConfigureAwait(false);
        }
        catch (Exception e) when (ClusterClient.Transient(e))
        {
            refused = $"the job could not be reached ({e.Message}); the lease will expire and another worker redoes it";
        }
        _held.TryRemove(KeyValuePair.Create(h.Lease.Shard, h));
        if (refused is not null)
        {
            log.LogWarning("shard {Input}: commit refused: {Why}", h.Input.Input, refused);
            return false;
        }
        _covers.Add(new ShardEpoch(h.Lease.Shard, h.Lease.Epoch));
        Interlocked.Increment(ref _committed);
        return true;
    }

    public async ValueTask CommittedAsync(ShardCommit commit, Held tag)
    {
        if (_selector is not null && ++_sincePartial >= options.PartialEveryShards)
        {
            await writePartial(spec, _selector, _covers.ToList()).ConfigureAwait(false);
            _sincePartial = 0;
        }
    }

    public async ValueTask FailedAsync(ShardJob shard, Held h, string error)
    {
        _held.TryRemove(KeyValuePair.Create(h.Lease.Shard, h));
        var done = new ShardDone(h.Lease.Shard, h.Lease.Epoch, null, null, 0, 0, error);
        try
        {
            await ClusterClient.RetryAsync(() => job.CommitAsync(options.Id, done), options.Patience, CancellationToken.None, log, "reporting a failed shard").ConfigureAwait(false);
        }
        catch (Exception e) when (ClusterClient.Transient(e))
        {
            log.LogWarning("shard {Input} failed ({Error}) and the job could not be told: {Why}", h.Input.Input, error, e.Message);
        }
    }

    /// <summary>
    /// Scores the job's shards, from the <paramref name="first"/> leases on, until none is left for this worker or
    /// <paramref name="stop"/> (SIGTERM); then hands back what it still holds when stopped or failed, and checkpoints the partial.
    /// </summary>
    public async Task RunAsync(WorkerInfo me, LeaseAnswer first, ITeacherSource teachers, CancellationToken stop)
    {
        log.LogInformation("job {Job}: scoring shards of {Data}", spec.Key, spec.Data);
        using var jobStop = CancellationTokenSource.CreateLinkedTokenSource(stop);
        Directory.CreateDirectory(Path.Combine(spec.Out, ScoringManifest.ScoresFolder));
        await using var session = await ScoringSession<Held>.OpenAsync(spec.Scoring(options.DecodeWorkers, options.Device), spec.Teacher, this,
            new ScoringSetupOptions { Teachers = teachers }, jobStop.Token).ConfigureAwait(false);
        _selector = session.Selector;
        var beat = HeartbeatAsync(jobStop.Token);
        var failed = await FeedAsync(session, me, first, stop, jobStop).ConfigureAwait(false);
        jobStop.Cancel();
        try
        {
            await beat.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        if (stop.IsCancellationRequested || failed is not null) await HandBackAsync().ConfigureAwait(false);
        if (_selector is not null && _covers.Count > 0 && _sincePartial > 0) await writePartial(spec, _selector, _covers.ToList()).ConfigureAwait(false);
        if (failed is not null) throw new InvalidOperationException($"the scoring graph failed: {failed.Message}", failed);
    }

    /// <summary>Sends leased shards to the session, keeping <see cref="WorkerOptions.Prefetch"/> ahead; returns the graph's failure, if any.</summary>
    private async Task<Exception?> FeedAsync(ScoringSession<Held> session, WorkerInfo me, LeaseAnswer first, CancellationToken stop, CancellationTokenSource jobStop)
    {
        try
        {
            for (var next = first; ;)
            {
                foreach (var lease in next.Leases)
                {
                    var h = new Held(lease, new ShardInput(lease.Input, 0, lease.ScoreFile));
                    _held[lease.Shard] = h;
                    // Checked here as well as when the job was submitted: a name never leads out of the job's folders.
                    if ((PathRoots.NameProblem(lease.Input) ?? (lease.ScoreFile is string f ? PathRoots.NameProblem(f) : null)) is string bad)
                    {
                        log.LogError("job {Job}: shard {Shard} refused: {Why}", spec.Key, lease.Shard, bad);
                        await FailedAsync(new ShardJob(lease.Input, lease.Input, h), h, $"refused by worker {options.Id}: {bad}").ConfigureAwait(false);
                        continue;
                    }
                    await session.SendAsync(Path.Combine(spec.Data, lease.Input), lease.Input, h).ConfigureAwait(false);
                }
                if (stop.IsCancellationRequested) break;
                // Keep Prefetch shards ahead of the graph: ask for what is missing once some were committed.
                while (_held.Count >= options.Prefetch && !stop.IsCancellationRequested && !session.Completion.IsCompleted)
                    await Task.Delay(20, CancellationToken.None).ConfigureAwait(false);
                if (stop.IsCancellationRequested || session.Completion.IsCompleted) break;
                next = await ClusterClient.RetryAsync(() => job.LeaseAsync(me, options.Prefetch - _held.Count), options.Patience, stop, log, "leasing").ConfigureAwait(false);
                if (next.Refused is not null || next.Leases.Count == 0)
                {
                    if (_held.IsEmpty) break;
                    await Task.Delay(200, CancellationToken.None).ConfigureAwait(false);
                    next = new LeaseAnswer([], null, false);
                }
            }
        }
        catch (Exception) when (stop.IsCancellationRequested)
        {
            // SIGTERM while sending a shard: the graph stops taking shards (a cancellation, or "stopped taking shards").
        }
        return await StopAsync(session, stop, jobStop).ConfigureAwait(false);
    }

    /// <summary>On SIGTERM, stops at once (the shard in inference finishes, nothing half done is committed); else drains.</summary>
    private async Task<Exception?> StopAsync(ScoringSession<Held> session, CancellationToken stop, CancellationTokenSource jobStop)
    {
        bool signalled = stop.IsCancellationRequested;
        try
        {
            if (signalled)
            {
                await jobStop.CancelAsync().ConfigureAwait(false);
                await session.WaitAsync().ConfigureAwait(false);
            }
            else
            {
                await session.DrainAsync().ConfigureAwait(false);
            }
            return null;
        }
        catch (Exception e) when (!(e is OperationCanceledException || signalled))
        {
            // A graph that failed (a write error, the teacher) is this worker's problem, not the shards': hand them back
            // at once so that another worker takes them, rather than renewing them for ever.
            log.LogError("job {Job}: the scoring graph failed: {Error}; handing back its leases", spec.Key, e.Message);
            return e;
        }
        catch (Exception)
        {
            return null;
        }
    }

    private async Task HandBackAsync()
    {
        try
        {
            int released = await ClusterClient.RetryAsync(() => job.ReleaseAsync(options.Id), TimeSpan.FromSeconds(10), CancellationToken.None, log, "handing back leases").ConfigureAwait(false);
            log.LogInformation("job {Job}: handed back {Released} leases", spec.Key, released);
        }
        catch (Exception e) when (ClusterClient.Transient(e))
        {
            log.LogWarning("job {Job}: leases not handed back ({Error}); they expire instead", spec.Key, e.Message);
        }
    }

    /// <summary>Renews the leases of the shards in flight, a third of the lease time apart.</summary>
    private async Task HeartbeatAsync(CancellationToken stop)
    {
        var every = TimeSpan.FromSeconds(Math.Max(0.2, spec.LeaseSeconds / 3));
        while (!stop.IsCancellationRequested)
        {
            await Task.Delay(every, stop).ConfigureAwait(false);
            var mine = _held.Values.Select(h => new ShardEpoch(h.Lease.Shard, h.Lease.Epoch)).ToList();
            if (mine.Count == 0) continue;
            try
            {
                var lost = await job.HeartbeatAsync(options.Id, mine).ConfigureAwait(false);
                foreach (int s in lost) log.LogWarning("job {Job}: the lease on shard {Shard} was lost; its commit will be refused", spec.Key, s);
            }
            catch (Exception e) when (ClusterClient.Transient(e))
            {
                log.LogWarning("job {Job}: heartbeat failed: {Error}", spec.Key, e.Message);
            }
        }
    }
}
