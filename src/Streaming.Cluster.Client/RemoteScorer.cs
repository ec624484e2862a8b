using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Streaming.Core;
using Streaming.Core.Selection;
using Streaming.Engine.Scoring.Stages;

namespace Streaming.Cluster.Client;

/// <summary>
/// The daemon's scoring when it is a cluster client: instead of its own graph, each shard it takes is appended to one
/// open-ended job of the daemon's (keyed by its state folder and settings), which the cluster's workers lease and score
/// into the daemon's state folder under the name the daemon gives it. This follows the shards it sent and, for each
/// one committed, hands its score shard to the caller (the daemon offers the rows
/// to its heaps and records the shard done), exactly as its own sink would.
/// </summary>
public sealed class RemoteScorer : IAsyncDisposable
{
    private readonly IHost _host;
    private readonly IJobGrain _job;
    private readonly JobSpec _spec;
    private readonly Func<ShardCommit, ScoreBatchSource, ValueTask> _committed;
    private readonly Func<ShardJob, string, ValueTask> _failed;
    private readonly ILogger _log;
    private readonly Dictionary<int, ShardJob> _waiting = [];
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stop = new();
    private Task _follow = Task.CompletedTask;

    /// <summary>Reads a committed shard's rows (its score shard), for the caller to offer them.</summary>
    public delegate IAsyncEnumerable<ScoreBatch> ScoreBatchSource(CancellationToken cancellationToken);

    private RemoteScorer(IHost host, JobSpec spec, Func<ShardCommit, ScoreBatchSource, ValueTask> committed, Func<ShardJob, string, ValueTask> failed, ILogger log)
    {
        _host = host;
        _spec = spec;
        _committed = committed;
        _failed = failed;
        _log = log;
        _job = host.Services.GetRequiredService<IClusterClient>().GetGrain<IJobGrain>(spec.Key);
    }

    /// <summary>The key of a daemon's job: its state folder and the settings its score shards depend on.</summary>
    public static string KeyFor(string stateFolder, string teacherSha256, int topP, int batch, int threads, string isa, bool channelsLast) =>
        "daemon-" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{Path.GetFullPath(stateFolder)}|{teacherSha256}|{topP}|{batch}|{threads}|{isa}|{channelsLast}")))[..16];

    /// <summary>Connects to the cluster and opens (or attaches to) the daemon's job.</summary>
    public static async Task<RemoteScorer> StartAsync(ClusterConnection connection, JobSpec spec, Func<ShardCommit, ScoreBatchSource, ValueTask> committed,
        Func<ShardJob, string, ValueTask> failed, ILogger log, CancellationToken cancellationToken)
    {
        if (connection.IsLocalhost) throw new StreamingException("cluster: the daemon needs a PostgreSQL cluster ('localhost' has no workers outside one process)");
        await ClusterSchema.EnsureAsync(connection, cancellationToken).ConfigureAwait(false);
        var host = ClusterClient.Build(connection);
        RemoteScorer scorer;
        try
        {
            await ClusterClient.StartAsync(host, connection, cancellationToken).ConfigureAwait(false);
            scorer = new RemoteScorer(host, spec, committed, failed, log);
            await ClusterClient.RetryAsync(() => scorer._job.SubmitAsync(spec), TimeSpan.FromMinutes(5), cancellationToken, log, "opening the daemon's job").ConfigureAwait(false);
        }
        catch
        {
            host.Dispose();
            throw;
        }
        scorer._follow = scorer.FollowAsync(scorer._stop.Token);
        log.LogInformation("scoring on the cluster {Cluster}: job {Job}", connection, spec.Key);
        return scorer;
    }

    /// <summary>Hands a shard to the cluster; <paramref name="scoreFile"/> is where its score shard goes, relative to the state folder.</summary>
    public async Task SendShardAsync(string path, string input, object? tag, string scoreFile, CancellationToken cancellationToken)
    {
        long rows = 0;
        // Named relative to the job's data folder, as every shard of a job is (the workers refuse absolute names and '..').
        string name = Path.GetRelativePath(_spec.Data, Path.GetFullPath(path));
        var indices = await ClusterClient.RetryAsync(() => _job.AppendAsync([new ShardInput(name, rows, scoreFile)]), TimeSpan.FromMinutes(5),
            cancellationToken, _log, "handing a shard to the cluster").ConfigureAwait(false);
        lock (_gate) _waiting[indices[0]] = new ShardJob(path, input, tag);
    }

    /// <summary>Follows the shards sent: each committed one is read and handed on; each failed one is reported.</summary>
    private async Task FollowAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(250), stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            try
            {
                await FollowOnceAsync(stop).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Never die quietly: every shard sent would wait for ever.
                _log.LogError("following the cluster's commits: {Error}; trying again", e.Message);
            }
        }
    }

    private async Task FollowOnceAsync(CancellationToken stop)
    {
        {
            List<int> ask;
            lock (_gate) ask = [.. _waiting.Keys];
            if (ask.Count == 0) return;
            var records = await _job.OutcomesAsync(ask).ConfigureAwait(false);
            for (int n = 0; n < ask.Count; n++)
            {
                var r = records[n];
                if (r.Status is not (ShardStatus.Done or ShardStatus.Failed)) continue;
                ShardJob shard;
                lock (_gate)
                {
                    shard = _waiting[ask[n]];
                    _waiting.Remove(ask[n]);
                }
                try
                {
                    if (r.Status == ShardStatus.Failed)
                    {
                        await _failed(shard, r.Error ?? "failed on the cluster").ConfigureAwait(false);
                        continue;
                    }
                    // The rows are read whole, and the file checked against its commit, before any reaches the heaps:
                    // a read that fails halfway must not count rows twice when the shard comes again.
                    string file = Path.Combine(_spec.Out, r.ScoreFile!);
                    var batches = new List<ScoreBatch>();
                    if (Hashing.Sha256File(file) != r.Sha256) throw new InvalidDataException($"{file} is not what was committed");
                    await foreach (var batch in ScoreShards.ReadBatchesAsync(file, stop).ConfigureAwait(false)) batches.Add(batch);
                    await _committed(new ShardCommit(shard, file, r.Rows, r.Quarantined, r.Sha256!), _ => batches.ToAsyncEnumerable()).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // Its drop finishes, in quarantine with the reason; dropping it again scores it again.
                    _log.LogError("shard {Input} committed on the cluster but not taken in: {Error}", shard.Input, e.Message);
                    await _failed(shard, $"committed on the cluster but not readable here: {e.Message}").ConfigureAwait(false);
                }
            }
        }
    }

    /// <summary>Shards sent and not yet committed.</summary>
    public int Waiting
    {
        get
        {
            lock (_gate) return _waiting.Count;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        try
        {
            await _follow.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        await _host.StopAsync(CancellationToken.None).ConfigureAwait(false);
        _host.Dispose();
        _stop.Dispose();
    }
}
