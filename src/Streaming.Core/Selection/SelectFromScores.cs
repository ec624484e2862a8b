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
            var shards = new List<ScoreShardEntry>();
            foreach (var s in root.GetProperty("shards").EnumerateArray())
            {
                string file = s.GetProperty("file").GetString()!;
                string path = Path.Combine(scoresDir, file);
                string sha = Hashing.Sha256File(path);
                if (sha != s.GetProperty("sha256").GetString())
                    throw new StreamingException($"{path}: does not match the hash in scoring.json (changed since scoring?)");
                long rows = 0;
                await foreach (var r in ScoreShards.ReadAsync(path, cancellationToken).ConfigureAwait(false))
                {
                    selector.Offer(r.Id, r.Classes, r.Probs);
                    rows++;
                }
                shards.Add(new ScoreShardEntry(file, rows, sha));
            }
            return await SelectionWriter.WriteAsync(output, selector, new SelectionManifest
            {
                Classes = classes,
                Dataset = root.TryGetProperty("dataset", out var d) ? d.GetString() : null,
                ScoreShards = shards,
            }, cancellationToken).ConfigureAwait(false);
        }
    }
}
