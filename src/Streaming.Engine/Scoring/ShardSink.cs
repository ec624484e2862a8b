using System.Text;
using System.Text.Json;
using Streaming.Core;
using Streaming.Core.Selection;
using Streaming.Engine.Scoring.Stages;

namespace Streaming.Engine.Scoring;

/// <summary>
/// The one sink, of every host: for each shard, in this order, the quarantine list (<c>SCORE_FILE.quarantine.jsonl</c>,
/// or none), the score shard (atomic: written whole, fsynced, renamed), the host's admission, the rows offered to the
/// selector, and the shard reported committed. A shard whose reading failed writes nothing and is reported failed.
/// Where the files go and what the reports do is the host's (<see cref="IScoringHost{TTag}"/>); the shard's tag is
/// the host's own type, cast here once.
/// </summary>
internal sealed class ShardSink<TTag>(IScoringHost<TTag> host, Selector? selector) : IShardSink
{
    public async Task CommitAsync(ShardScores shard, CancellationToken cancellationToken)
    {
        var tag = (TTag)shard.Shard.Tag!;
        if (shard.Error is string error)
        {
            await UnderGateAsync(() => host.FailedAsync(shard.Shard, tag, error)).ConfigureAwait(false);
            return;
        }
        // Once started, a shard is committed whole: its files do not depend on a cancellation arriving halfway.
        string file = host.ScoreFile(shard.Shard, tag);
        string sha256;
        try
        {
            WriteQuarantine(file + ".quarantine.jsonl", shard.Quarantined);
            var (ids, classes, probs) = shard.Arrays;
            sha256 = await ScoreShards.WriteAsync(file, ids, classes, probs, shard.TopP, shard.Count, cancellationToken: CancellationToken.None).ConfigureAwait(false);
        }
        catch (IOException e) when (host.TakesWriteErrors)
        {
            await UnderGateAsync(() => host.WriteFailedAsync(shard.Shard, tag, e)).ConfigureAwait(false);
            return;
        }
        var commit = new ShardCommit(shard.Shard, file, shard.Count, shard.Quarantined.Count, sha256);
        await UnderGateAsync(async () =>
        {
            if (!await host.AdmitAsync(commit, tag).ConfigureAwait(false)) return;
            selector?.Offer(shard.Ids, shard.Classes, shard.Probs, shard.TopP);
            await host.CommittedAsync(commit, tag).ConfigureAwait(false);
        }).ConfigureAwait(false);
    }

    private static void WriteQuarantine(string path, IReadOnlyList<Streaming.Core.Datasets.QuarantineEntry> quarantined)
    {
        if (quarantined.Count > 0)
        {
            var text = new StringBuilder();
            foreach (var q in quarantined) text.Append(JsonSerializer.Serialize(q)).Append('\n');
            AtomicFile.WriteAllText(path, text.ToString());
        }
        else if (File.Exists(path))
        {
            File.Delete(path);
        }
    }

    private async ValueTask UnderGateAsync(Func<ValueTask> action)
    {
        if (host.Gate is not { } gate)
        {
            await action().ConfigureAwait(false);
            return;
        }
        await gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            await action().ConfigureAwait(false);
        }
        finally
        {
            gate.Release();
        }
    }
}
