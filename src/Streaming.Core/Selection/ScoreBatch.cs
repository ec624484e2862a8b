namespace Streaming.Core.Selection;

/// <summary>
/// Score rows as columns: row i has id <c>Ids[i]</c> and the classes and probabilities at
/// <c>Offsets[i] .. Offsets[i + 1]</c>, highest first. One row group of a score shard, with no per-row objects.
/// </summary>
public sealed record ScoreBatch(string[] Ids, int[] Offsets, int[] Classes, float[] Probs)
{
    public int Count => Ids.Length;

    public ScoreRow Row(int i) => new(Ids[i], Classes[Offsets[i]..Offsets[i + 1]], Probs[Offsets[i]..Offsets[i + 1]]);
}
