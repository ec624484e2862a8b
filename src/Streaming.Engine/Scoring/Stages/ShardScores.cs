using Streaming.Core.Datasets;

namespace Streaming.Engine.Scoring.Stages;

/// <summary>
/// One shard's scores, as the sink assembles them from its batches: the images that decoded (ids, and P' classes and
/// probabilities each, in shard order), the ones that did not, and the error that failed the shard, if one did. The
/// sink reuses one for every shard: a sink that keeps anything past <see cref="IShardSink.CommitAsync"/> copies it.
/// </summary>
public sealed class ShardScores
{
    private string[] _ids = new string[1024];
    private int[] _classes;
    private float[] _probs;

    public ShardScores(int topP)
    {
        TopP = topP;
        _classes = new int[_ids.Length * topP];
        _probs = new float[_ids.Length * topP];
    }

    public ShardJob Shard { get; private set; } = null!;
    public int TopP { get; }
    /// <summary>Images scored.</summary>
    public int Count { get; private set; }
    public ReadOnlySpan<string> Ids => _ids.AsSpan(0, Count);
    /// <summary><see cref="TopP"/> classes a row, highest probability first.</summary>
    public ReadOnlySpan<int> Classes => _classes.AsSpan(0, Count * TopP);
    public ReadOnlySpan<float> Probs => _probs.AsSpan(0, Count * TopP);
    /// <summary>The arrays behind the columns (their first <see cref="Count"/> rows), for writers that take arrays.</summary>
    public (string[] Ids, int[] Classes, float[] Probs) Arrays => (_ids, _classes, _probs);
    public List<QuarantineEntry> Quarantined { get; } = [];
    public string? Error { get; private set; }

    internal void Start(ShardJob shard)
    {
        Shard = shard;
        Count = 0;
        Error = null;
        Quarantined.Clear();
        Array.Clear(_ids);
    }

    internal void Append(ImageBatch batch)
    {
        int n = batch.Good, k = TopP;
        if (Count + n > _ids.Length)
        {
            int size = Math.Max(Count + n, _ids.Length * 2);
            Array.Resize(ref _ids, size);
            Array.Resize(ref _classes, size * k);
            Array.Resize(ref _probs, size * k);
        }
        for (int g = 0; g < n; g++) _ids[Count + g] = batch.Ids[batch.Rows[g]];
        batch.Classes.AsSpan(0, n * k).CopyTo(_classes.AsSpan(Count * k));
        batch.Probs.AsSpan(0, n * k).CopyTo(_probs.AsSpan(Count * k));
        Count += n;
        Quarantined.AddRange(batch.Quarantined);
    }

    internal void Fail(string error) => Error = error;
}
