namespace Streaming.Core.Selection;

/// <summary>D-hat from stored score shards, with no inference: a K or P sweep costs a read of the scores.</summary>
public static class SelectFromScores
{
    /// <summary>Reads <c>scoring.json</c> in <paramref name="scoresDir"/> and every score shard it lists, on one task a core (at most 8).</summary>
    public static async Task<SelectionManifest> RunAsync(string scoresDir, int k, int p, string output, BalanceMode mode = BalanceMode.Ranked,
        ulong seed = 0, CancellationToken cancellationToken = default)
    {
        var scoring = ScoringManifest.Load(scoresDir);
        int topP = scoring.TopP;
        TopP.Check(p, topP);
        var classes = scoring.Classes;
        var selector = new Selector(classes.Count, k, p, mode, seed);
        // Reading (Parquet decoding, the larger cost at scale) runs on up to one task per core, each taking the
        // next shard, and hands row groups over a bounded channel to the one selector: the selection is a pure
        // function of the rows, not of the order they arrive in, so shards may finish in any order.
        var files = scoring.Shards.Select(s => (s.File, Path: Path.Combine(scoresDir, s.File), Sha: s.Sha256)).ToList();
        int readers = Math.Max(1, Math.Min(files.Count, Math.Min(Environment.ProcessorCount, 8)));
        var channel = System.Threading.Channels.Channel.CreateBounded<(int Shard, ScoreBatch? Batch)>(new System.Threading.Channels.BoundedChannelOptions(2 * readers + 2)
        {
            SingleReader = true, SingleWriter = readers == 1,
        });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        int next = -1;
        async Task ReadShardsAsync()
        {
            try
            {
                for (int f; (f = Interlocked.Increment(ref next)) < files.Count;)
                {
                    string sha = Hashing.Sha256File(files[f].Path);
                    if (sha != files[f].Sha)
                        throw new StreamingException($"{files[f].Path}: does not match the hash in scoring.json (changed since scoring?)");
                    await foreach (var batch in ScoreShards.ReadBatchesAsync(files[f].Path, stop.Token).ConfigureAwait(false))
                        await channel.Writer.WriteAsync((f, batch), stop.Token).ConfigureAwait(false);
                }
            }
            catch
            {
                await stop.CancelAsync().ConfigureAwait(false); // the other readers stop too
                throw;
            }
        }
        var reader = Task.Run(async () =>
        {
            try
            {
                await Task.WhenAll(Enumerable.Range(0, readers).Select(_ => Task.Run(ReadShardsAsync, CancellationToken.None))).ConfigureAwait(false);
                channel.Writer.Complete();
            }
            catch (Exception e)
            {
                channel.Writer.Complete(e);
            }
        }, CancellationToken.None);
        var rows = new long[files.Count];
        try
        {
            await foreach (var (shard, batch) in channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                selector.Offer(batch!);
                rows[shard] += batch!.Count;
            }
        }
        finally
        {
            // Whatever ended the loop, the reader stops too (it may be waiting on a full channel).
            await stop.CancelAsync().ConfigureAwait(false);
            try
            {
                await reader.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }
        var shards = files.Select((f, i) => new ScoreShardEntry(f.File, rows[i], f.Sha)).ToList();
        return await SelectionWriter.WriteAsync(output, selector, new SelectionManifest
        {
            Classes = classes,
            Dataset = string.IsNullOrEmpty(scoring.Dataset) ? null : scoring.Dataset,
            ScoreShards = shards,
        }, cancellationToken).ConfigureAwait(false);
    }
}
