using System.Text.Json;

namespace Streaming.Core.Selection;

/// <summary>D-hat from stored score shards, with no inference: a K or P sweep costs a read of the scores.</summary>
public static class SelectFromScores
{
    /// <summary>Reads <c>scoring.json</c> in <paramref name="scoresDir"/> and every score shard it lists.</summary>
    public static async Task<SelectionManifest> RunAsync(string scoresDir, int k, int p, string output, BalanceMode mode = BalanceMode.Ranked,
        ulong seed = 0, CancellationToken cancellationToken = default)
    {
        string manifestPath = Path.Combine(scoresDir, "scoring.json");
        if (!File.Exists(manifestPath)) throw new StreamingException($"{manifestPath}: not found (is {scoresDir} the output of 'streaming score'?)");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllText(manifestPath));
        }
        catch (JsonException e)
        {
            throw new StreamingException($"{manifestPath}: bad scoring manifest ({e.Message})", e);
        }
        using (doc)
        {
            var root = doc.RootElement;
            int topP = root.GetProperty("top_p").GetInt32();
            if (p < 1 || p > topP) throw new StreamingException($"-p {p}: the scores keep {topP} classes an image (--top-p at scoring), so P must be 1..{topP}");
            var classes = root.GetProperty("classes").EnumerateArray().Select(c => c.GetString() ?? "").ToList();
            var selector = new Selector(classes.Count, k, p, mode, seed);
            // Reading (Parquet decoding) and selecting overlap: a reader task hands row groups over a bounded
            // channel to the selector, so on two cores the slower of the two sets the pace, not their sum.
            var files = new List<(string File, string Path, string Sha)>();
            foreach (var s in root.GetProperty("shards").EnumerateArray())
            {
                string file = s.GetProperty("file").GetString()!;
                files.Add((file, Path.Combine(scoresDir, file), s.GetProperty("sha256").GetString() ?? ""));
            }
            var channel = System.Threading.Channels.Channel.CreateBounded<(int Shard, ScoreBatch? Batch)>(new System.Threading.Channels.BoundedChannelOptions(4)
            {
                SingleReader = true, SingleWriter = true,
            });
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var reader = Task.Run(async () =>
            {
                try
                {
                    for (int f = 0; f < files.Count; f++)
                    {
                        string sha = Hashing.Sha256File(files[f].Path);
                        if (sha != files[f].Sha)
                            throw new StreamingException($"{files[f].Path}: does not match the hash in scoring.json (changed since scoring?)");
                        await foreach (var batch in ScoreShards.ReadBatchesAsync(files[f].Path, stop.Token).ConfigureAwait(false))
                            await channel.Writer.WriteAsync((f, batch), stop.Token).ConfigureAwait(false);
                    }
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
                Dataset = root.TryGetProperty("dataset", out var d) ? d.GetString() : null,
                ScoreShards = shards,
            }, cancellationToken).ConfigureAwait(false);
        }
    }
}
