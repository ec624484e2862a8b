using System.Text;
using System.Text.Json;
using Streaming.Core;
using Streaming.Core.Selection;

namespace Streaming.Engine.Scoring.Stages;

/// <summary>What a committed shard left on disk: its score shard, rows, quarantined images and the score shard's SHA-256.</summary>
public sealed record ShardCommit(ShardJob Shard, string ScoreFile, long Rows, long Quarantined, string Sha256);

/// <summary>
/// The one local sink, shared by <c>score</c>, the daemon and <c>profile</c>: for each shard, in this order, the
/// quarantine list (<c>SCORE_FILE.quarantine.jsonl</c>, or none), the score shard (atomic: written whole, fsynced,
/// renamed), the rows offered to the selector, and the shard reported done. A shard whose reading failed writes
/// nothing and is reported failed. The selector and the reports run under <paramref name="gate"/> when one is given
/// (the daemon's state has other users).
/// </summary>
/// <param name="scoreFile">Where a shard's score shard goes.</param>
/// <param name="selector">The heaps the rows are offered to; null: none (profile).</param>
/// <param name="committed">Called once a shard is durable and its rows offered, under the gate.</param>
/// <param name="failed">Called for a shard that could not be read, under the gate.</param>
/// <param name="writeFailed">Called, under the gate, for a shard whose files could not be written (a full disk): nothing of
/// it was committed, and the caller may try it again. Null: the error stops the graph (a batch command).</param>
/// <param name="admit">Asked, under the gate, once a shard's score shard is durable and before its rows reach the selector:
/// false keeps them out (a cluster worker whose commit was refused, its lease having moved). Null: every shard is admitted.</param>
public sealed class ShardSink(Func<ShardJob, string> scoreFile, Selector? selector = null, Func<ShardCommit, ValueTask>? committed = null,
    Func<ShardJob, string, ValueTask>? failed = null, SemaphoreSlim? gate = null, Func<ShardJob, IOException, ValueTask>? writeFailed = null,
    Func<ShardCommit, ValueTask<bool>>? admit = null) : IShardSink
{
    public async Task CommitAsync(ShardScores shard, CancellationToken cancellationToken)
    {
        if (shard.Error is string error)
        {
            await UnderGateAsync(() => failed?.Invoke(shard.Shard, error) ?? ValueTask.CompletedTask).ConfigureAwait(false);
            return;
        }
        // Once started, a shard is committed whole: its files do not depend on a cancellation arriving halfway.
        string file = scoreFile(shard.Shard);
        string sha256;
        try
        {
            string quarantine = file + ".quarantine.jsonl";
            if (shard.Quarantined.Count > 0)
            {
                var text = new StringBuilder();
                foreach (var q in shard.Quarantined) text.Append(JsonSerializer.Serialize(q)).Append('\n');
                AtomicFile.WriteAllText(quarantine, text.ToString());
            }
            else if (File.Exists(quarantine))
            {
                File.Delete(quarantine);
            }
            var (ids, classes, probs) = shard.Arrays;
            sha256 = await ScoreShards.WriteAsync(file, ids, classes, probs, shard.TopP, shard.Count, cancellationToken: CancellationToken.None).ConfigureAwait(false);
        }
        catch (IOException e) when (writeFailed is not null)
        {
            await UnderGateAsync(() => writeFailed(shard.Shard, e)).ConfigureAwait(false);
            return;
        }
        var commit = new ShardCommit(shard.Shard, file, shard.Count, shard.Quarantined.Count, sha256);
        await UnderGateAsync(async () =>
        {
            if (admit is not null && !await admit(commit).ConfigureAwait(false)) return;
            selector?.Offer(shard.Ids, shard.Classes, shard.Probs, shard.TopP);
            if (committed is not null) await committed(commit).ConfigureAwait(false);
        }).ConfigureAwait(false);
    }

    private async ValueTask UnderGateAsync(Func<ValueTask> action)
    {
        if (gate is null)
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
