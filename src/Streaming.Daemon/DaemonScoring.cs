using Microsoft.Extensions.Logging;
using Streaming.Cluster.Client;
using Streaming.Core;
using Streaming.Engine.Scoring;
using Streaming.Engine.Scoring.Stages;

namespace Streaming.Daemon;

/// <summary>
/// Where the daemon's shards are scored: in this process, by a <see cref="ScoringSession{TTag}"/> that lives as long as
/// the daemon, or, with <c>cluster</c>, by the cluster's workers (<see cref="RemoteScorer"/>: one open-ended job of the
/// daemon's). Either way each shard reaches <see cref="DaemonShards"/> once, committed or failed.
/// </summary>
internal sealed class DaemonScoring : IAsyncDisposable
{
    private readonly ScoringSession<WorkShard>? _session;
    private readonly RemoteScorer? _remote;
    private readonly DaemonShards _host;
    private readonly string _state;
    private readonly CancellationToken _stop;

    private DaemonScoring(ScoringSession<WorkShard>? session, RemoteScorer? remote, DaemonShards host, string state, CancellationToken stop)
    {
        _session = session;
        _remote = remote;
        _host = host;
        _state = state;
        _stop = stop;
    }

    /// <summary>The local session's stages (none with a cluster).</summary>
    public IReadOnlyList<Streaming.Core.Dataflow.StageStats> Stages => _session?.Stages ?? [];

    /// <summary>Why the local graph stopped, if it failed: it cannot score anything more.</summary>
    public string? Failure => _session?.Completion is { IsFaulted: true } failed
        ? failed.Exception!.Flatten().InnerExceptions.FirstOrDefault(e => e is not OperationCanceledException)?.Message ?? "cancelled"
        : null;

    /// <summary>Starts scoring on <paramref name="setup"/> with the ledger's heaps; <paramref name="graphStop"/> stops a local graph.</summary>
    public static async Task<DaemonScoring> StartAsync(DaemonConfig config, ScoringSetup setup, DaemonShards host, HeapLedger ledger, string state,
        ILogger log, CancellationToken graphStop, CancellationToken stop)
    {
        if (config.ClusterConnection is not { } connection)
            return new DaemonScoring(ScoringSession<WorkShard>.Start(setup, host, ledger.Selector, graphStop), null, host, state, stop);
        // A cluster client: the cluster's workers score each shard into this state folder, under the name given here.
        string teacherSha = Hashing.Sha256File(setup.TeacherFile);
        string isa = setup.Compute.Isa;
        // The shards live in the inbox or under the state folder: the job's data folder holds both, and names them relative to it.
        string data = CommonFolder(config.Inbox, state);
        var spec = JobSpec.For(setup.Spec, isa, Path.GetFullPath(setup.TeacherFile), teacherSha, data, "", Path.GetFullPath(state), config.LeaseSeconds, []) with { K = null };
        spec = spec with { Key = RemoteScorer.KeyFor(state, teacherSha, setup.TopP, spec.Batch, spec.Threads, isa, spec.ChannelsLast), TopP = setup.TopP };
        var remote = await RemoteScorer.StartAsync(connection, spec,
            (c, rows) => new ValueTask(host.LockedAsync(async () =>
            {
                await foreach (var batch in rows(CancellationToken.None).ConfigureAwait(false)) ledger.Selector.Offer(batch);
                await host.CommittedAsync(c, (WorkShard)c.Shard.Tag!).ConfigureAwait(false);
            })),
            (job, error) => new ValueTask(host.LockedAsync(() => host.FailedAsync(job, (WorkShard)job.Tag!, error).AsTask())), log, stop).ConfigureAwait(false);
        return new DaemonScoring(null, remote, host, state, stop);
    }

    /// <summary>The deepest folder that holds both <paramref name="a"/> and <paramref name="b"/>.</summary>
    private static string CommonFolder(string a, string b)
    {
        var x = Path.GetFullPath(a).TrimEnd('/').Split('/');
        var y = Path.GetFullPath(b).TrimEnd('/').Split('/');
        int n = 0;
        while (n < x.Length && n < y.Length && x[n] == y[n]) n++;
        string common = string.Join('/', x[..n]);
        return common.Length == 0 ? "/" : common;
    }

    /// <summary>Sends one shard of a drop (waiting while the graph is full).</summary>
    public Task SendAsync(string path, string input, WorkShard shard) => _session is not null
        ? _session.SendAsync(path, input, shard)
        : _remote!.SendShardAsync(path, input, shard, Path.GetRelativePath(_state, _host.ScoreFile(new ShardJob(path, input, shard), shard)), _stop);

    /// <summary>Stops: the batch in inference finishes, the shard being recorded is recorded; an error of the graph is logged.</summary>
    public async Task StopAsync(ILogger log)
    {
        if (_remote is not null) await _remote.DisposeAsync().ConfigureAwait(false);
        if (_session is null) return;
        try
        {
            await _session.Completion.ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException || _session.Completion.IsCanceled)
        {
        }
        catch (Exception e)
        {
            log.LogError(e, "scoring stopped with an error");
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_session is not null) await _session.DisposeAsync().ConfigureAwait(false);
    }
}
