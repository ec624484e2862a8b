using Streaming.Core;
using Streaming.Core.Datasets;
using Streaming.Core.Selection;
using Streaming.Engine.Scoring.Stages;

namespace Streaming.Engine.Scoring;

/// <summary>
/// <c>score</c>'s host: score shards go to <c>OUT/scores/score-NAME.parquet</c>, a folder this run owns. A rerun into the
/// same folder skips the shards whose score shard exists (the unit of resume is the shard). The tag is a shard's index in
/// the dataset.
/// </summary>
internal sealed class LocalScoreHost(string output, DatasetManifest dataset, Action<string> log) : IScoringHost<int>
{
    private readonly Dictionary<string, (long Rows, string Sha256)> _written = new(StringComparer.Ordinal); // by this run, hashed as written
    private readonly List<FailedShard> _failed = [];

    public string ScoresFolder { get; } = Path.Combine(output, ScoringManifest.ScoresFolder);

    public long Scored { get; private set; }
    public long Quarantined { get; private set; }
    public IReadOnlyList<FailedShard> Failed => _failed;

    private string ScoreFileOf(int shard) => Path.Combine(ScoresFolder, ScoringManifest.ScoreFileName(dataset.Shards[shard].File));

    public string ScoreFile(ShardJob shard, int tag) => ScoreFileOf(tag);

    public ValueTask CommittedAsync(ShardCommit commit, int tag)
    {
        _written[dataset.Shards[tag].File] = (commit.Rows, commit.Sha256);
        Scored += commit.Rows;
        Quarantined += commit.Quarantined;
        return ValueTask.CompletedTask;
    }

    public ValueTask FailedAsync(ShardJob shard, int tag, string error)
    {
        _failed.Add(new FailedShard(shard.Input, error));
        log($"shard {shard.Input} failed: {error}");
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// The shards left to score, in <paramref name="order"/> (default: the manifest's); clears the temporary files of a
    /// run that was killed while writing (their names are unique to their writer, so a rerun would not write over them).
    /// </summary>
    public List<int> Pending(IReadOnlyList<int>? order)
    {
        Directory.CreateDirectory(ScoresFolder);
        foreach (var partial in Directory.EnumerateFiles(ScoresFolder, "*" + AtomicFile.TempSuffix)) AtomicFile.TryDelete(partial);
        return (order ?? Enumerable.Range(0, dataset.Shards.Count).ToList()).Where(i => !File.Exists(ScoreFileOf(i))).ToList();
    }

    /// <summary>
    /// Every score shard present, in input order. Those written by an earlier run are read once here: counted, hashed,
    /// and folded into <paramref name="selector"/> (selection does not depend on the order of rows).
    /// </summary>
    public async Task<List<ScoredShard>> ShardsAsync(Selector? selector, CancellationToken cancellationToken)
    {
        var entries = new List<ScoredShard>();
        for (int i = 0; i < dataset.Shards.Count; i++)
        {
            string file = ScoreFileOf(i);
            if (!File.Exists(file)) continue;
            if (!_written.TryGetValue(dataset.Shards[i].File, out var w))
                w = await ReadEarlierAsync(file, selector, cancellationToken).ConfigureAwait(false);
            string q = file + ".quarantine.jsonl";
            entries.Add(new ScoredShard(dataset.Shards[i].File, Path.GetRelativePath(output, file), w.Rows, File.Exists(q) ? File.ReadLines(q).LongCount() : 0, w.Sha256));
        }
        return entries;
    }

    private static async Task<(long Rows, string Sha256)> ReadEarlierAsync(string file, Selector? selector, CancellationToken cancellationToken)
    {
        long rows = 0;
        await foreach (var group in ScoreShards.ReadBatchesAsync(file, cancellationToken).ConfigureAwait(false))
        {
            selector?.Offer(group);
            rows += group.Count;
        }
        return (rows, Hashing.Sha256File(file));
    }
}
