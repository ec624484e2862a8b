using Microsoft.Extensions.Logging;
using Streaming.Cluster.Client;

namespace Streaming.Cluster;

/// <summary>A job's persisted state (grain storage <see cref="ClusterHosting.StorageName"/>).</summary>
[GenerateSerializer]
public sealed class JobState
{
    [Id(0)] public JobSpec? Spec;
    /// <summary>Incremented and saved at each activation: the high half of every epoch, so that no two activations hand out the same one.</summary>
    [Id(1)] public long Generation;
    [Id(2)] public ShardRecord[] Shards = [];
    [Id(3)] public Dictionary<string, PartialInfo> Partials = new(StringComparer.Ordinal);
    /// <summary>The kernels of the job's first worker; every later worker must run the same.</summary>
    [Id(4)] public string? KernelKey;
    [Id(5)] public string? ComputeJson;
    [Id(6)] public bool Finished;
    [Id(7)] public Dictionary<string, WorkerTally> Workers = new(StringComparer.Ordinal);
}

/// <summary>What one worker did for a job.</summary>
[GenerateSerializer]
public sealed class WorkerTally
{
    [Id(0)] public int Shards;
    [Id(1)] public long Images;
    [Id(2)] public DateTime FirstUtc;
    [Id(3)] public DateTime LastUtc;
    [Id(4)] public DateTime SeenUtc;
}

/// <summary>
/// A scoring job. Shards are leased with an expiry (renewed by heartbeats) and an epoch; a commit must carry the epoch of
/// the shard's current lease, so a worker that stalled past its expiry, while another took the shard, is refused
/// (fencing). State is written behind (at most a second late, and at once for the calls that end a job's phases): a
/// commit lost with a silo only means the shard is scored again, to the same bytes, under a new epoch.
/// </summary>
public sealed class JobGrain(
    [PersistentState("job", ClusterHosting.StorageName)] IPersistentState<JobState> state,
    ILogger<JobGrain> log) : Grain, IJobGrain
{
    private long _epochs;
    private bool _dirty;
    private readonly SortedSet<int> _pending = [];
    private readonly HashSet<int> _leased = [];
    private readonly Dictionary<(string Input, string? ScoreFile), int> _byInput = [];
    private readonly List<string> _refusals = [];
    private IGrainTimer? _flush;

    private JobState S => state.State;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        if (S.Spec is not null)
        {
            S.Generation++;
            await state.WriteStateAsync(cancellationToken);
            Index();
        }
        _flush = this.RegisterGrainTimer(FlushAsync, new GrainTimerCreationOptions(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1)) { Interleave = false });
        await base.OnActivateAsync(cancellationToken);
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        _flush?.Dispose();
        if (_dirty) await state.WriteStateAsync(cancellationToken);
        await base.OnDeactivateAsync(reason, cancellationToken);
    }

    private void Index()
    {
        _pending.Clear();
        _leased.Clear();
        _byInput.Clear();
        for (int i = 0; i < S.Spec!.Shards.Count; i++) _byInput.TryAdd((S.Spec.Shards[i].Input, S.Spec.Shards[i].ScoreFile), i);
        for (int i = 0; i < S.Shards.Length; i++)
        {
            if (S.Shards[i].Status == ShardStatus.Pending) _pending.Add(i);
            else if (S.Shards[i].Status == ShardStatus.Leased) _leased.Add(i);
        }
    }

    private async Task FlushAsync(CancellationToken cancellationToken)
    {
        if (!_dirty) return;
        await SaveNowAsync();
    }

    /// <summary>Writes the state now; a write that fails (the database restarts) leaves the state dirty for the next flush.</summary>
    private async Task SaveNowAsync()
    {
        _dirty = false;
        try
        {
            await state.WriteStateAsync();
        }
        catch
        {
            _dirty = true;
            throw;
        }
    }

    /// <summary>Every shard's input and score file is a relative name inside the job's folders (no absolute path, no '..').</summary>
    private static void CheckNames(IEnumerable<ShardInput> shards)
    {
        foreach (var s in shards)
            if ((PathRoots.NameProblem(s.Input) ?? (s.ScoreFile is string f ? PathRoots.NameProblem(f) : null)) is string problem)
                throw new ArgumentException($"a job's shard is refused: {problem}");
    }

    public Task RefuseAsync(string worker, string reason)
    {
        string why = $"worker {worker}: {reason}";
        if (!_refusals.Contains(why)) _refusals.Add(why);
        return Task.CompletedTask;
    }

    private long NextEpoch() => (S.Generation << 32) | (uint)++_epochs;

    public async Task<JobStatus> SubmitAsync(JobSpec spec)
    {
        CheckNames(spec.Shards);
        if (S.Spec is null)
        {
            S.Spec = spec;
            S.Generation = 1;
            S.Shards = spec.Shards.Select(_ => new ShardRecord()).ToArray();
            Index();
            await SaveNowAsync();
            log.LogInformation("job {Job}: {Shards} shards of {Data}", spec.Key, spec.Shards.Count, spec.Data);
        }
        else if (S.Spec.Key != spec.Key)
        {
            throw new InvalidOperationException($"job {this.GetPrimaryKeyString()} holds another spec ({S.Spec.Key})");
        }
        else if (S.Shards.Any(r => r.Status == ShardStatus.Failed))
        {
            // Submitting again retries the shards that failed, as a rerun of a one-machine score does.
            for (int i = 0; i < S.Shards.Length; i++)
                if (S.Shards[i].Status == ShardStatus.Failed)
                {
                    S.Shards[i].Status = ShardStatus.Pending;
                    S.Shards[i].Worker = null;
                    S.Shards[i].Error = null;
                    _pending.Add(i);
                }
            S.Finished = false;
            await SaveNowAsync();
        }
        if (!S.Finished) await GrainFactory.GetGrain<IJobRegistryGrain>(IJobRegistryGrain.Key).AddAsync(spec.Key);
        return Status();
    }

    public Task<JobSpec?> SpecAsync() => Task.FromResult(S.Spec);

    public Task<LeaseAnswer> LeaseAsync(WorkerInfo worker, int max)
    {
        var spec = S.Spec;
        if (spec is null || S.Finished) return Task.FromResult(new LeaseAnswer([], null, true));
        if (Refuse(spec, worker) is string why)
        {
            if (!_refusals.Contains(why)) _refusals.Add(why);
            return Task.FromResult(new LeaseAnswer([], why, false));
        }
        var now = DateTime.UtcNow;
        Seen(worker.Id, now);
        Reclaim(now);
        var leases = new List<Lease>();
        while (leases.Count < max && _pending.Count > 0)
        {
            int i = _pending.Min;
            _pending.Remove(i);
            _leased.Add(i);
            var r = S.Shards[i];
            r.Status = ShardStatus.Leased;
            r.Worker = worker.Id;
            r.Epoch = NextEpoch();
            r.ExpiresUtc = now + TimeSpan.FromSeconds(spec.LeaseSeconds);
            leases.Add(new Lease(i, spec.Shards[i].Input, r.Epoch, r.ExpiresUtc, spec.Shards[i].ScoreFile));
        }
        if (leases.Count > 0) _dirty = true;
        return Task.FromResult(new LeaseAnswer(leases, null, leases.Count == 0 && _leased.Count == 0));
    }

    /// <summary>Why a worker may not work on this job (its kernels differ from the job's), or null.</summary>
    private string? Refuse(JobSpec spec, WorkerInfo worker)
    {
        if (spec.Isa != "native" && worker.Isa != spec.Isa)
            return $"worker {worker.Id}: the job pins isa {spec.Isa}, this worker runs {worker.Isa}; start it with --isa {spec.Isa}";
        if (worker.ChannelsLast != spec.ChannelsLast)
            return $"worker {worker.Id}: the job runs channels-last {(spec.ChannelsLast ? "on" : "off")}, this worker {(worker.ChannelsLast ? "on" : "off")}; start it with --channels-last {(spec.ChannelsLast ? "true" : "false")}";
        if (S.KernelKey is null)
        {
            S.KernelKey = worker.KernelKey;
            S.ComputeJson = worker.ComputeJson;
            _dirty = true;
            return null;
        }
        return S.KernelKey == worker.KernelKey ? null
            : $"worker {worker.Id}: its kernels ({worker.KernelKey}) differ from the job's ({S.KernelKey}), so its score shards would not be byte-identical; start it with the job's --isa";
    }

    /// <summary>Leases past their expiry go back to pending (their epoch stays until a new lease replaces it).</summary>
    private void Reclaim(DateTime now)
    {
        List<int>? expired = null;
        foreach (int i in _leased)
            if (S.Shards[i].ExpiresUtc < now) (expired ??= []).Add(i);
        if (expired is null) return;
        foreach (int i in expired)
        {
            _leased.Remove(i);
            _pending.Add(i);
            S.Shards[i].Status = ShardStatus.Pending;
            log.LogInformation("job {Job}: the lease of shard {Shard} by {Worker} expired; it is pending again", S.Spec!.Key, i, S.Shards[i].Worker);
        }
        _dirty = true;
    }

    public Task<IReadOnlyList<int>> HeartbeatAsync(string worker, IReadOnlyList<ShardEpoch> held)
    {
        var lost = new List<int>();
        if (S.Spec is not { } spec) return Task.FromResult<IReadOnlyList<int>>(held.Select(h => h.Shard).ToList());
        var now = DateTime.UtcNow;
        Seen(worker, now);
        foreach (var h in held)
        {
            if ((uint)h.Shard >= (uint)S.Shards.Length) continue;
            var r = S.Shards[h.Shard];
            if (r.Epoch != h.Epoch || r.Worker != worker || r.Status == ShardStatus.Failed)
            {
                lost.Add(h.Shard);
                continue;
            }
            if (r.Status == ShardStatus.Pending)
            {
                // Expired, but nobody took it since: the lease is still the latest, so it is held again.
                _pending.Remove(h.Shard);
                _leased.Add(h.Shard);
                r.Status = ShardStatus.Leased;
            }
            if (r.Status == ShardStatus.Leased) r.ExpiresUtc = now + TimeSpan.FromSeconds(spec.LeaseSeconds);
        }
        // Renewed expiries are not written: after a reactivation a lease may expire early, which only means a redo.
        return Task.FromResult<IReadOnlyList<int>>(lost);
    }

    public async Task<string?> CommitAsync(string worker, ShardDone done)
    {
        if (S.Spec is null) return "no such job";
        if ((uint)done.Shard >= (uint)S.Shards.Length) return $"shard {done.Shard} is not in the job";
        var r = S.Shards[done.Shard];
        if (r.Status is ShardStatus.Done or ShardStatus.Failed)
            return r.Epoch == done.Epoch && r.Worker == worker ? null : $"shard {done.Shard} was already committed under epoch {r.Epoch:x}";
        // Fencing: only the latest lease may commit. A lease that expired but was not handed out again is still the latest.
        if (r.Epoch != done.Epoch || r.Worker != worker)
            return $"stale lease on shard {done.Shard}: epoch {done.Epoch:x} of {worker}, the shard's lease is now epoch {r.Epoch:x} of {r.Worker}";
        var now = DateTime.UtcNow;
        _leased.Remove(done.Shard);
        _pending.Remove(done.Shard);
        r.Status = done.Error is null ? ShardStatus.Done : ShardStatus.Failed;
        r.ScoreFile = done.ScoreFile;
        r.Sha256 = done.Sha256;
        r.Rows = done.Rows;
        r.Quarantined = done.Quarantined;
        r.Error = done.Error;
        var t = Seen(worker, now);
        t.Shards++;
        t.Images += done.Rows;
        if (t.FirstUtc == default) t.FirstUtc = now;
        t.LastUtc = now;
        _dirty = true;
        if (_pending.Count == 0 && _leased.Count == 0) await SaveNowAsync();
        return null;
    }

    private WorkerTally Seen(string worker, DateTime now)
    {
        if (!S.Workers.TryGetValue(worker, out var t)) S.Workers[worker] = t = new WorkerTally();
        t.SeenUtc = now;
        return t;
    }

    public async Task<int> ReleaseAsync(string worker)
    {
        var mine = _leased.Where(i => S.Shards[i].Worker == worker).ToList();
        foreach (int i in mine)
        {
            _leased.Remove(i);
            _pending.Add(i);
            S.Shards[i].Status = ShardStatus.Pending;
            S.Shards[i].Worker = null; // its epoch can no longer commit
        }
        if (mine.Count > 0) await SaveNowAsync();
        return mine.Count;
    }

    public async Task<bool> RegisterPartialAsync(PartialInfo partial)
    {
        if (S.Finished || S.Spec is null) return false;
        if (S.Partials.TryGetValue(partial.Worker, out var old) && old.Covers.Count > partial.Covers.Count) return true;
        S.Partials[partial.Worker] = partial;
        await SaveNowAsync();
        return true;
    }

    public async Task RequeueAsync(IReadOnlyList<int> shards)
    {
        foreach (int i in shards)
        {
            if ((uint)i >= (uint)S.Shards.Length || S.Shards[i].Status != ShardStatus.Done) continue;
            S.Shards[i].Status = ShardStatus.Pending;
            S.Shards[i].Worker = null;
            _pending.Add(i);
        }
        S.Finished = false;
        await SaveNowAsync();
        if (S.Spec is { } spec) await GrainFactory.GetGrain<IJobRegistryGrain>(IJobRegistryGrain.Key).AddAsync(spec.Key);
    }

    public Task<JobStatus?> StatusAsync() => Task.FromResult(S.Spec is null ? null : Status());

    private JobStatus Status()
    {
        var spec = S.Spec!;
        int done = 0, failed = 0;
        long images = 0;
        foreach (var r in S.Shards)
        {
            if (r.Status == ShardStatus.Done) done++;
            else if (r.Status == ShardStatus.Failed) failed++;
            if (r.Status == ShardStatus.Done) images += r.Rows;
        }
        var workers = S.Workers.Select(kv => new WorkerProgress(kv.Key, _leased.Count(i => S.Shards[i].Worker == kv.Key), kv.Value.Shards, kv.Value.Images,
            kv.Value.Images / Math.Max(1.0, (kv.Value.LastUtc - kv.Value.FirstUtc).TotalSeconds), kv.Value.SeenUtc)).OrderBy(w => w.Worker, StringComparer.Ordinal).ToList();
        var first = S.Workers.Values.Where(w => w.FirstUtc != default).Select(w => w.FirstUtc).DefaultIfEmpty().Min();
        var last = S.Workers.Values.Select(w => w.LastUtc).DefaultIfEmpty().Max();
        double rate = first == default ? 0 : images / Math.Max(1.0, (last - first).TotalSeconds);
        return new JobStatus(spec.Key, S.Shards.Length, done, failed, _leased.Count, _pending.Count, images, rate, workers, S.Finished, spec.Out, _refusals.ToList());
    }

    public Task<JobRecord?> RecordAsync() => Task.FromResult(S.Spec is null ? null
        : new JobRecord(S.Spec, S.Shards.ToArray(), S.Partials.Values.OrderBy(p => p.Worker, StringComparer.Ordinal).ToList(), S.ComputeJson));

    public async Task<IReadOnlyList<int>> AppendAsync(IReadOnlyList<ShardInput> shards)
    {
        var spec = S.Spec ?? throw new InvalidOperationException($"job {this.GetPrimaryKeyString()} was not submitted");
        CheckNames(shards);
        var added = new List<ShardInput>();
        var indices = new List<int>();
        bool changed = false;
        foreach (var shard in shards)
        {
            if (_byInput.TryGetValue((shard.Input, shard.ScoreFile), out int at))
            {
                // Sent again: the sender needs it scored again (its score shard was lost, or it failed before).
                if (S.Shards[at].Status is ShardStatus.Done or ShardStatus.Failed)
                {
                    S.Shards[at].Status = ShardStatus.Pending;
                    S.Shards[at].Worker = null;
                    S.Shards[at].Error = null;
                    _pending.Add(at);
                    changed = true;
                }
            }
            else
            {
                at = spec.Shards.Count + added.Count;
                added.Add(shard);
                _byInput[(shard.Input, shard.ScoreFile)] = at;
                _pending.Add(at);
            }
            indices.Add(at);
        }
        if (added.Count > 0)
        {
            S.Spec = spec with { Shards = [.. spec.Shards, .. added] };
            S.Shards = [.. S.Shards, .. added.Select(_ => new ShardRecord())];
        }
        if (added.Count > 0 || changed)
        {
            S.Finished = false;
            await SaveNowAsync();
            await GrainFactory.GetGrain<IJobRegistryGrain>(IJobRegistryGrain.Key).AddAsync(spec.Key);
        }
        return indices;
    }

    public Task<IReadOnlyList<ShardRecord>> OutcomesAsync(IReadOnlyList<int> shards) =>
        Task.FromResult<IReadOnlyList<ShardRecord>>(shards.Select(i => (uint)i < (uint)S.Shards.Length ? S.Shards[i] : new ShardRecord { Status = ShardStatus.Failed, Error = "not in the job" }).ToList());

    public async Task FinishAsync()
    {
        S.Finished = true;
        await SaveNowAsync();
        await GrainFactory.GetGrain<IJobRegistryGrain>(IJobRegistryGrain.Key).RemoveAsync(S.Spec!.Key);
    }
}

/// <summary>The list of jobs (grain storage): active ones are those workers lease from.</summary>
[GenerateSerializer]
public sealed class RegistryState
{
    [Id(0)] public List<string> Active = [];
    [Id(1)] public List<string> All = [];
}

public sealed class JobRegistryGrain([PersistentState("registry", ClusterHosting.StorageName)] IPersistentState<RegistryState> state) : Grain, IJobRegistryGrain
{
    public async Task AddAsync(string job)
    {
        bool changed = false;
        if (!state.State.Active.Contains(job))
        {
            state.State.Active.Add(job);
            changed = true;
        }
        if (!state.State.All.Contains(job))
        {
            state.State.All.Add(job);
            changed = true;
        }
        if (changed) await state.WriteStateAsync();
    }

    public async Task RemoveAsync(string job)
    {
        if (state.State.Active.Remove(job)) await state.WriteStateAsync();
    }

    public Task<IReadOnlyList<string>> ActiveAsync() => Task.FromResult<IReadOnlyList<string>>(state.State.Active.ToList());

    public Task<IReadOnlyList<string>> AllAsync() => Task.FromResult<IReadOnlyList<string>>(state.State.All.ToList());
}
