using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Streaming.Core;
using Streaming.Core.Compute;
using Streaming.Core.Datasets;
using Streaming.Core.Options;
using Streaming.Core.Selection;
using Streaming.Engine.Scoring;

namespace Streaming.Cluster.Client;

/// <summary>A job's key: a hash of everything its outputs depend on, so the same command attaches to the same job.</summary>
public static class JobKeys
{
    public static string Of(JobSpec spec)
    {
        var text = JsonSerializer.Serialize(new
        {
            spec.TeacherSha256, spec.DataManifestSha256, spec.Data, spec.Out, spec.TopP, spec.Batch, spec.Threads, spec.Isa, spec.ChannelsLast,
            spec.K, spec.P, spec.Balance, spec.Seed,
        });
        return "job-" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..16];
    }
}

/// <summary>What a cluster <c>score</c> did.</summary>
public sealed record ClusterScoreResult(JobStatus Status, ScoringManifest Scoring, SelectionManifest? Selection, TimeSpan Elapsed, int Requeued);

/// <summary>
/// The submitter's side of a cluster <c>score</c>: submit the job or attach to it, follow its progress, and once every
/// shard is committed write what a one-machine <c>score</c> writes: <c>scoring.json</c>, the quarantine list and, with
/// -k, <c>selection/</c>, merged from the workers' partial selectors by per-class grains.
/// </summary>
public static class ClusterJobs
{
    /// <summary>The job a <c>score</c> with these options runs (<paramref name="isa"/>: the kernels this process runs, by name).</summary>
    public static JobSpec SpecFor(ScoreOptions o, string isa, double leaseSeconds)
    {
        var dataset = DatasetManifest.Load(o.Data);
        // Checked here and again by the job grain and each worker: names inside a job stay inside its folders.
        foreach (var shard in dataset.Shards)
            if (PathRoots.NameProblem(shard.File) is string problem) throw new StreamingException($"{o.Data}: a job's shard is refused: {problem}");
        string teacher = Streaming.Models.Teachers.Teachers.Resolve(o.Teacher);
        var spec = JobSpec.For(o.Scoring.Validated(), isa, Path.GetFullPath(teacher), Hashing.Sha256File(teacher), Path.GetFullPath(o.Data),
            Hashing.Sha256File(Path.Combine(o.Data, DatasetManifest.FileName)), Path.GetFullPath(o.Out), leaseSeconds,
            dataset.Shards.Select(s => new ShardInput(s.File, s.Rows)).ToList());
        return spec with { Key = JobKeys.Of(spec) };
    }

    /// <summary>
    /// Submits (or attaches to) the job and waits for it; cancelling detaches and leaves the job running. Then writes
    /// the outputs. <paramref name="classes"/> are the teacher's class names (they go into the manifests).
    /// </summary>
    public static async Task<ClusterScoreResult> RunAsync(IGrainFactory grains, JobSpec spec, IReadOnlyList<string> classes,
        IProgress<JobStatus>? progress = null, Action<string>? log = null, CancellationToken cancellationToken = default)
    {
        log ??= _ => { };
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var job = grains.GetGrain<IJobGrain>(spec.Key);
        var patience = TimeSpan.FromMinutes(5);
        var status = await ClusterClient.RetryAsync(() => job.SubmitAsync(spec), patience, cancellationToken, null, "submitting").ConfigureAwait(false);
        log(status.Done + status.Failed > 0 ? $"attached to job {spec.Key}: {status.Done} of {status.Shards} shards done" : $"submitted job {spec.Key}: {status.Shards} shards");
        int requeued = 0;
        var reported = new HashSet<string>(StringComparer.Ordinal);
        var still = System.Diagnostics.Stopwatch.StartNew(); // since the job last moved
        while (true)
        {
            while (!status.Complete)
            {
                await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
                var before = status;
                status = await ClusterClient.RetryAsync(async () => (await job.StatusAsync().ConfigureAwait(false))!, patience, cancellationToken, null, "following the job").ConfigureAwait(false);
                foreach (var r in status.Refusals)
                    if (reported.Add(r)) log($"refused: {r}");
                progress?.Report(status);
                if (status.Done + status.Failed != before.Done + before.Failed || status.Leased > 0) still.Restart();
                // Refused and nothing moves: no worker will run it (its paths, its kernels); say so rather than wait for ever.
                if (status.Refusals.Count > 0 && still.Elapsed > RefusedAfter)
                    throw new StreamingException($"job {spec.Key} is refused by the cluster's workers, and none has run a shard of it for {RefusedAfter.TotalSeconds:N0} s: {string.Join("; ", status.Refusals)}");
            }
            var record = (await ClusterClient.RetryAsync(job.RecordAsync, patience, cancellationToken, null, "reading the job").ConfigureAwait(false))!;
            // Every committed score shard must be there, as committed; one that is not (deleted, torn) is scored again.
            var bad = record.Shards.Select((r, i) => (r, i))
                .Where(x => x.r.Status == ShardStatus.Done && (!File.Exists(Path.Combine(spec.Out, x.r.ScoreFile!)) || Hashing.Sha256File(Path.Combine(spec.Out, x.r.ScoreFile!)) != x.r.Sha256))
                .Select(x => x.i).ToList();
            if (bad.Count == 0)
            {
                var (scoring, selection) = await WriteOutputsAsync(grains, record, classes, log, cancellationToken).ConfigureAwait(false);
                await ClusterClient.RetryAsync(async () =>
                {
                    await job.FinishAsync().ConfigureAwait(false);
                    return true;
                }, patience, cancellationToken).ConfigureAwait(false);
                // Once finished, the partials merged here go (a worker still writing its last one finds the job finished and removes it).
                if (selection is not null) RemovePartials(spec.Out, record.Partials.Select(p => p.File), log);
                return new ClusterScoreResult(status, scoring, selection, clock.Elapsed, requeued);
            }
            log($"{bad.Count} committed score shards are missing or not as committed; they are scored again");
            requeued += bad.Count;
            await job.RequeueAsync(bad).ConfigureAwait(false);
            status = (await job.StatusAsync().ConfigureAwait(false))!;
        }
    }

    /// <summary>scoring.json, the quarantine list and selection/: the same files a one-machine score writes, by the same closing step.</summary>
    private static async Task<(ScoringManifest, SelectionManifest?)> WriteOutputsAsync(IGrainFactory grains, JobRecord record, IReadOnlyList<string> classes,
        Action<string> log, CancellationToken cancellationToken)
    {
        var spec = record.Spec;
        var entries = new List<ScoredShard>();
        var failed = new List<FailedShard>();
        for (int i = 0; i < record.Shards.Count; i++)
        {
            var r = record.Shards[i];
            if (r.Status == ShardStatus.Done) entries.Add(new ScoredShard(spec.Shards[i].Input, r.ScoreFile!, r.Rows, r.Quarantined, r.Sha256!));
            else failed.Add(new FailedShard(spec.Shards[i].Input, r.Error ?? "not scored"));
        }
        var compute = record.ComputeJson is string json ? JsonSerializer.Deserialize<ComputeEnvironment>(json) : null;
        var manifest = new ScoringManifest
        {
            Teacher = spec.Teacher,
            TeacherSha256 = spec.TeacherSha256,
            Dataset = spec.Data,
            DatasetManifestSha256 = spec.DataManifestSha256,
            TopP = Math.Min(spec.TopP, classes.Count),
            Batch = spec.Batch,
            Classes = classes,
            Shards = entries,
            FailedShards = failed,
            Compute = compute is null ? null : compute with { Threads = spec.Threads },
        };
        // Orphans: score shards written but never committed (a worker died between the rename and the commit) are
        // the same bytes as the committed ones and were overwritten; temporary files of cut-off writes go.
        // Those of the last minutes are left: a stale worker may still be writing one (its commit will be refused).
        foreach (var partial in Directory.EnumerateFiles(Path.Combine(spec.Out, ScoringManifest.ScoresFolder), "*" + AtomicFile.TempSuffix))
            if (DateTime.UtcNow - File.GetLastWriteTimeUtc(partial) > TempFilesLeftAlone) AtomicFile.TryDelete(partial);
        var selector = spec.K is null ? null : await MergeAsync(grains, record, classes.Count, log, cancellationToken).ConfigureAwait(false);
        return (manifest, await ScoringOutputs.WriteAsync(spec.Out, manifest, selector, cancellationToken).ConfigureAwait(false));
    }

    /// <summary>How long a refused job may stand still before the submitter gives up on it.</summary>
    public static TimeSpan RefusedAfter { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Temporary files younger than this are not removed as leftovers: their writer may still be at work.</summary>
    public static readonly TimeSpan TempFilesLeftAlone = TimeSpan.FromMinutes(5);

    /// <summary>Removes merged partials (and the submitter's own), then partials/ itself if nothing else is in it; a failure is only logged.</summary>
    private static void RemovePartials(string outFolder, IEnumerable<string> registered, Action<string> log)
    {
        string root = Path.Combine(outFolder, PartialFiles.Folder);
        if (!Directory.Exists(root)) return;
        var names = registered.Select(p => Path.Combine(outFolder, p))
            .Concat(Directory.EnumerateDirectories(root, "submitter-*").Where(d => !d.EndsWith(AtomicFile.TempSuffix, StringComparison.Ordinal)));
        try
        {
            foreach (var folder in names.Where(Directory.Exists)) Directory.Delete(folder, recursive: true);
            // Older partials of the same workers, superseded by the ones registered.
            foreach (var folder in Directory.EnumerateDirectories(root).Where(d => !d.EndsWith(AtomicFile.TempSuffix, StringComparison.Ordinal)).ToList())
                Directory.Delete(folder, recursive: true);
            if (!Directory.EnumerateFileSystemEntries(root).Any()) Directory.Delete(root);
        }
        catch (IOException e)
        {
            log($"note: {root} not cleaned up entirely ({e.Message})");
        }
    }

    /// <summary>
    /// D-hat from the partials: those whose every shard is committed under the epoch they name, disjoint from each other,
    /// plus one made here from the score shards no chosen partial covers. Merge grains (a bucket of classes each) fold
    /// them; the result equals a selector fed every score shard, because the heaps' merge is exact.
    /// </summary>
    internal static async Task<Selector> MergeAsync(IGrainFactory grains, JobRecord record, int classCount, Action<string> log, CancellationToken cancellationToken)
    {
        var spec = record.Spec;
        var mode = BalanceModes.Parse(spec.Balance);
        var committed = record.Shards.Select((r, i) => (r, i)).Where(x => x.r.Status == ShardStatus.Done).ToDictionary(x => x.i, x => x.r.Epoch);
        var covered = new HashSet<int>();
        var chosen = new List<string>();
        foreach (var p in record.Partials.OrderByDescending(p => p.Covers.Count).ThenBy(p => p.File, StringComparer.Ordinal))
        {
            bool valid = p.Covers.All(c => committed.TryGetValue(c.Shard, out long e) && e == c.Epoch && !covered.Contains(c.Shard))
                && Directory.Exists(Path.Combine(spec.Out, p.File));
            if (!valid) continue;
            chosen.Add(p.File);
            foreach (var c in p.Covers) covered.Add(c.Shard);
        }
        var rest = committed.Keys.Where(i => !covered.Contains(i)).Order().ToList();
        if (rest.Count > 0 || chosen.Count == 0)
        {
            var own = new Selector(classCount, spec.K!.Value, spec.P, mode, spec.Seed);
            foreach (int i in rest)
                await foreach (var batch in ScoreShards.ReadBatchesAsync(Path.Combine(spec.Out, record.Shards[i].ScoreFile!), cancellationToken).ConfigureAwait(false))
                    own.Offer(batch);
            string name = Path.Combine(PartialFiles.Folder, $"submitter-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}");
            Directory.CreateDirectory(Path.Combine(spec.Out, PartialFiles.Folder));
            await PartialFiles.WriteAsync(spec.Out, name, own, cancellationToken).ConfigureAwait(false);
            chosen.Add(name);
        }
        log($"merging {chosen.Count} partial selectors ({covered.Count} shards from workers' partials, {rest.Count} read from their score shards)");

        // Fresh grains for each merge: a bucket that merged another set of partials before (an earlier attempt) holds nothing of this one.
        string merge = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        // The buckets merge at once, each in its grain (spread over the silos); then each class's kept set is fetched.
        var buckets = Enumerable.Range(0, (classCount + PartialFiles.ClassesPerBucket - 1) / PartialFiles.ClassesPerBucket).ToList();
        var results = await Task.WhenAll(buckets.Select(b => MergeBucketAsync(grains.GetGrain<IClassMergeGrain>($"{spec.Key}/{merge}/{b}"), spec.Out,
            b * PartialFiles.ClassesPerBucket, Math.Min(PartialFiles.ClassesPerBucket, classCount - b * PartialFiles.ClassesPerBucket), chosen, cancellationToken))).ConfigureAwait(false);
        var kept = results.SelectMany(r => r.Kept.SelectMany(one => Enumerable.Range(0, one.Ids.Length).Select(i => (one.Class, new Candidate(one.Scores[i], one.Ids[i], one.Probs[i])))));
        long rows = results[0].Summary.Rows;
        long[] topOne = results[0].Summary.TopOne;
        return Selector.Restore(classCount, spec.K!.Value, spec.P, mode, spec.Seed, rows, topOne, kept);
    }

    /// <summary>One bucket: its partials merged, then its classes' kept sets; delivered again while the grain has not merged them all (it lost its silo).</summary>
    private static async Task<(MergeSummary Summary, List<ClassKept> Kept)> MergeBucketAsync(IClassMergeGrain bucket, string outFolder, int first, int count,
        IReadOnlyList<string> chosen, CancellationToken cancellationToken)
    {
        for (int attempt = 1; ; attempt++)
        {
            var summary = await ClusterClient.RetryAsync(() => bucket.MergeAsync(outFolder, first, count, chosen), TimeSpan.FromMinutes(5), cancellationToken).ConfigureAwait(false);
            bool whole = summary.Merged.Count == chosen.Count && chosen.All(summary.Merged.Contains);
            var kept = new List<ClassKept>();
            for (int c = first; whole && c < first + count; c++)
            {
                int cc = c;
                var one = await ClusterClient.RetryAsync(() => bucket.KeptAsync(cc), TimeSpan.FromMinutes(5), cancellationToken).ConfigureAwait(false);
                // A grain that came back empty on another silo has not merged them all: deliver again.
                whole = one.Merged.Count == chosen.Count && chosen.All(one.Merged.Contains);
                kept.Add(one);
            }
            if (whole)
            {
                await bucket.DoneAsync().ConfigureAwait(false);
                return (summary, kept);
            }
            if (attempt >= 5) throw new StreamingException($"merge grain {bucket.GetPrimaryKeyString()} lost its partials five times running");
        }
    }
}
