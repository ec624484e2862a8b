using System.Text.Json;
using System.Text.Json.Serialization;
using Streaming.Core.Shards;

namespace Streaming.Core.Selection;

/// <summary><c>selection.json</c>: what D-hat is and what it was made from.</summary>
public sealed record SelectionManifest
{
    public const string FileName = "selection.json";
    public const string DhatFileName = "dhat.parquet";

    [JsonPropertyName("format")] public string Format { get; init; } = "streaming.selection/1";
    /// <summary>The engine that wrote it (commit, dirty).</summary>
    [JsonPropertyName("engine")] public EngineBuild? Engine { get; init; } = BuildInfo.Current;
    [JsonPropertyName("k")] public int K { get; init; }
    [JsonPropertyName("p")] public int P { get; init; }
    [JsonPropertyName("balance")] public string Balance { get; init; } = "ranked";
    [JsonPropertyName("seed")] public ulong Seed { get; init; }
    [JsonPropertyName("rows_scored")] public long RowsScored { get; init; }
    [JsonPropertyName("selected")] public long Selected { get; init; }
    [JsonPropertyName("distinct_images")] public long DistinctImages { get; init; }
    [JsonPropertyName("classes")] public IReadOnlyList<string> Classes { get; init; } = [];
    [JsonPropertyName("counts")] public IReadOnlyList<int> Counts { get; init; } = [];
    [JsonPropertyName("dataset")] public string? Dataset { get; init; }
    [JsonPropertyName("score_shards")] public IReadOnlyList<ScoreShardEntry> ScoreShards { get; init; } = [];
    [JsonPropertyName("dhat_sha256")] public string DhatSha256 { get; init; } = "";
}

public sealed record ScoreShardEntry(
    [property: JsonPropertyName("file")] string File,
    [property: JsonPropertyName("rows")] long Rows,
    [property: JsonPropertyName("sha256")] string Sha256);

/// <summary>
/// Writes D-hat as Parquet (<c>class</c> int32, <c>rank</c> int32 with 1 the highest score of the class,
/// <c>id</c> string, <c>score</c> float), sorted by class then rank, and <c>selection.json</c> beside it.
/// Equal selections give byte-identical files.
/// </summary>
public static class SelectionWriter
{
    private static readonly ParquetColumn ClassColumn = ParquetColumn.Required<int>("class");
    private static readonly ParquetColumn RankColumn = ParquetColumn.Required<int>("rank");
    private static readonly ParquetColumn IdColumn = ParquetColumn.Required<string>("id");
    private static readonly ParquetColumn ScoreColumn = ParquetColumn.Required<float>("score");

    private const int RowGroupRows = 1 << 20;

    /// <summary>Distinct ids, counted on their 64-bit stable hashes (a primitive sort, not a set of millions of strings).</summary>
    private static long CountDistinct(string[] ids)
    {
        var hashes = new ulong[ids.Length];
        for (int i = 0; i < ids.Length; i++) hashes[i] = StableHash.Of(ids[i], 0);
        Array.Sort(hashes);
        long distinct = 0;
        for (int i = 0; i < hashes.Length; i++) if (i == 0 || hashes[i] != hashes[i - 1]) distinct++;
        return distinct;
    }

    public static async Task<SelectionManifest> WriteAsync(string folder, Selector selector, SelectionManifest header, CancellationToken cancellationToken = default)
    {
        Directory.CreateDirectory(folder);
        var result = selector.Result();
        int n = result.Sum(r => r.Ranked.Length);
        var classes = new int[n];
        var ranks = new int[n];
        var ids = new string[n];
        var scores = new float[n];
        int at = 0;
        foreach (var (c, ranked) in result)
            for (int i = 0; i < ranked.Length; i++, at++)
            {
                classes[at] = c;
                ranks[at] = i + 1;
                ids[at] = ranked[i].Id;
                scores[at] = ranked[i].Prob;
            }
        // Counting distinct images (a hash and a sort of 16M ids at K x C = 16M) overlaps the writing.
        var distinct = Task.Run(() => CountDistinct(ids), cancellationToken);
        string path = Path.Combine(folder, SelectionManifest.DhatFileName);
        string temp = AtomicFile.TempFor(path);
        await using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            await using var writer = await ParquetFileWriter.CreateAsync([ClassColumn, RankColumn, IdColumn, ScoreColumn], stream, ShardCompression.Snappy,
                cancellationToken).ConfigureAwait(false);
            // Row groups of a million rows, so that writing a D-hat of K x C = 16M rows does not hold it all twice.
            for (int start = 0; start < n || start == 0; start += RowGroupRows)
            {
                int count = Math.Min(RowGroupRows, n - start);
                using var rg = writer.CreateRowGroup();
                await rg.WriteAsync<int>(ClassColumn, classes.AsMemory(start, count), cancellationToken).ConfigureAwait(false);
                await rg.WriteAsync<int>(RankColumn, ranks.AsMemory(start, count), cancellationToken).ConfigureAwait(false);
                await rg.WriteAsync(IdColumn, ids[start..(start + count)]).ConfigureAwait(false);
                await rg.WriteAsync<float>(ScoreColumn, scores.AsMemory(start, count), cancellationToken).ConfigureAwait(false);
                if (n == 0) break;
            }
        }
        AtomicFile.Commit(temp, path);
        var manifest = header with
        {
            K = selector.K,
            P = selector.P,
            Balance = BalanceModes.Name(selector.Mode),
            Seed = selector.Seed,
            RowsScored = selector.Rows,
            Selected = n,
            DistinctImages = await distinct.ConfigureAwait(false),
            Counts = result.Select(r => r.Ranked.Length).ToList(),
            DhatSha256 = Hashing.Sha256File(path),
        };
        string json = JsonSerializer.Serialize(manifest, new JsonSerializerOptions { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull }) + "\n";
        AtomicFile.WriteAllText(Path.Combine(folder, SelectionManifest.FileName), json);
        return manifest;
    }
}
