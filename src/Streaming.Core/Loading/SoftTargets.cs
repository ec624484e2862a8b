using Streaming.Core.Datasets;
using Streaming.Core.Selection;
using Streaming.Core.Shards;

namespace Streaming.Core.Loading;

/// <summary>
/// Soft training targets: for each image, the teacher's top-P' (class, probability) pairs from its score shards,
/// renormalized to sum to 1 over those P' classes (an option beyond the paper, which trains on hard labels).
/// Only the images of the training dataset are kept in memory: P' pairs an image. An image that D-hat holds
/// under several classes (id <c>ID@CLASS</c>, see <see cref="SelectionImages"/>) gets the same distribution
/// under each.
/// </summary>
public sealed class SoftTargets
{
    private readonly Dictionary<string, (int[] Classes, float[] Probs)> _table;

    private SoftTargets(Dictionary<string, (int[] Classes, float[] Probs)> table, int numClasses, int topP)
    {
        _table = table;
        NumClasses = numClasses;
        TopP = topP;
    }

    public int NumClasses { get; }
    /// <summary>P': the pairs an image the scores hold.</summary>
    public int TopP { get; }
    public int Count => _table.Count;

    /// <summary>
    /// Reads the score shards of <paramref name="scoresDir"/> (the output of <c>score</c>), keeping the images of
    /// the dataset at <paramref name="dataset"/>. Fails when the classes differ or an image has no scores.
    /// </summary>
    public static async Task<SoftTargets> LoadAsync(string scoresDir, string dataset, CancellationToken cancellationToken = default)
    {
        var scoring = ScoringManifest.Load(scoresDir);
        var manifest = DatasetManifest.Load(dataset);
        if (!scoring.Classes.SequenceEqual(manifest.Classes))
            throw new StreamingException($"{scoresDir}: the scores' classes ({string.Join(", ", scoring.Classes.Take(5))}...) are not the dataset's ({string.Join(", ", manifest.Classes.Take(5))}...); soft targets need the teacher of this D-hat");
        var ids = new List<string>();
        foreach (var shard in manifest.ShardPaths(dataset))
            foreach (var (id, _) in await ImageShardReader.ReadIdsAndLabelsAsync(shard, cancellationToken).ConfigureAwait(false))
                ids.Add(id);
        // An id as it is, and without a D-hat class suffix: whichever the scores hold.
        var wanted = new HashSet<string>(ids, StringComparer.Ordinal);
        foreach (var id in ids) wanted.Add(StripClass(id));
        var table = new Dictionary<string, (int[], float[])>(wanted.Count, StringComparer.Ordinal);
        foreach (var shard in scoring.Shards)
            await foreach (var batch in ScoreShards.ReadBatchesAsync(Path.Combine(scoresDir, shard.File), cancellationToken).ConfigureAwait(false))
                for (int i = 0; i < batch.Count; i++)
                    if (wanted.Contains(batch.Ids[i]))
                    {
                        var row = batch.Row(i);
                        table[row.Id] = (row.Classes, row.Probs);
                    }
        var missing = ids.Where(id => !table.ContainsKey(id) && !table.ContainsKey(StripClass(id))).ToList();
        if (missing.Count > 0)
            throw new StreamingException($"{scoresDir}: has no scores for {missing.Count:N0} of the dataset's {ids.Count:N0} images (e.g. {string.Join(", ", missing.Take(3))}); soft targets need the scores the D-hat was selected from");
        return new SoftTargets(table, manifest.Classes.Count, scoring.TopP);
    }

    /// <summary>An in-memory table (tests, and callers that have the scores already).</summary>
    public static SoftTargets From(IEnumerable<ScoreRow> rows, int numClasses)
    {
        var table = new Dictionary<string, (int[], float[])>(StringComparer.Ordinal);
        int topP = 0;
        foreach (var r in rows)
        {
            table[r.Id] = (r.Classes, r.Probs);
            topP = Math.Max(topP, r.Classes.Length);
        }
        return new SoftTargets(table, numClasses, topP);
    }

    /// <summary>Writes image <paramref name="id"/>'s target distribution (length <see cref="NumClasses"/>) into <paramref name="target"/>.</summary>
    public void Fill(string id, Span<float> target)
    {
        if (!_table.TryGetValue(id, out var entry) && !_table.TryGetValue(StripClass(id), out entry))
            throw new StreamingException($"image '{id}' has no teacher scores for its soft target");
        target.Clear();
        double sum = 0;
        for (int j = 0; j < entry.Classes.Length; j++)
        {
            int c = entry.Classes[j];
            if ((uint)c >= (uint)NumClasses) throw new StreamingException($"image '{id}': its scores name class {c}, outside 0..{NumClasses - 1}");
            target[c] += entry.Probs[j];
            sum += entry.Probs[j];
        }
        if (!(sum > 0)) throw new StreamingException($"image '{id}': its scores sum to {sum}, not a distribution");
        float scale = (float)(1 / sum);
        for (int c = 0; c < target.Length; c++) target[c] *= scale;
    }

    /// <summary>The id an image was scored under when D-hat holds it under several classes: <c>ID@CLASS</c> is <c>ID</c>.</summary>
    private static string StripClass(string id)
    {
        int at = id.LastIndexOf('@');
        return at > 0 && at < id.Length - 1 && id.AsSpan(at + 1).IndexOfAnyExceptInRange('0', '9') < 0 ? id[..at] : id;
    }
}
