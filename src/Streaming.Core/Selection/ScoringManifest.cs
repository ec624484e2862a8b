using System.Text.Json;
using System.Text.Json.Serialization;
using Streaming.Core.Compute;

namespace Streaming.Core.Selection;

/// <summary>
/// <c>scoring.json</c>: what was scored, with which teacher and kernels, and which shards are done. One type, read and
/// written here only: <c>score</c> writes it, and selection, reports and soft targets read it.
/// </summary>
public sealed record ScoringManifest
{
    public const string FileName = "scoring.json";
    public const string ScoresFolder = "scores";

    /// <summary>A score shard's file name for an input shard: the same from `score`, and from a cluster worker.</summary>
    public static string ScoreFileName(string input) => "score-" + Path.GetFileNameWithoutExtension(input) + ".parquet";

    [JsonPropertyName("format")] public string Format { get; init; } = "streaming.scores/1";
    /// <summary>The engine that wrote it (commit, dirty).</summary>
    [JsonPropertyName("engine")] public EngineBuild? Engine { get; init; } = BuildInfo.Current;
    [JsonPropertyName("teacher")] public string Teacher { get; init; } = "";
    [JsonPropertyName("teacher_sha256")] public string TeacherSha256 { get; init; } = "";
    [JsonPropertyName("dataset")] public string Dataset { get; init; } = "";
    [JsonPropertyName("dataset_manifest_sha256")] public string DatasetManifestSha256 { get; init; } = "";
    [JsonPropertyName("top_p")] public int TopP { get; init; }
    [JsonPropertyName("batch")] public int Batch { get; init; }
    [JsonPropertyName("classes")] public IReadOnlyList<string> Classes { get; init; } = [];
    [JsonPropertyName("shards")] public IReadOnlyList<ScoredShard> Shards { get; init; } = [];
    [JsonPropertyName("failed_shards")] public IReadOnlyList<FailedShard> FailedShards { get; init; } = [];
    /// <summary>The kernels the teacher ran on: scores are byte-identical only under the same ones.</summary>
    [JsonPropertyName("compute")] public ComputeEnvironment? Compute { get; init; }

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>Rows over every score shard.</summary>
    [JsonIgnore] public long Rows => Shards.Sum(s => s.Rows);

    /// <summary>Reads <c>scoring.json</c> from a scoring folder, with one clear error for a missing or unreadable one.</summary>
    public static ScoringManifest Load(string scoresDir)
    {
        string path = Path.Combine(scoresDir, FileName);
        if (!File.Exists(path)) throw new StreamingException($"{path}: not found (is {scoresDir} the output of 'streaming score'?)");
        try
        {
            var manifest = JsonSerializer.Deserialize<ScoringManifest>(File.ReadAllText(path)) ?? throw new JsonException("empty");
            if (manifest.TopP < 1) throw new JsonException("no top_p");
            return manifest;
        }
        catch (JsonException e)
        {
            throw new StreamingException($"{path}: bad scoring manifest ({e.Message})", e);
        }
    }

    /// <summary>Writes <c>scoring.json</c> into a scoring folder (atomically).</summary>
    public Task SaveAsync(string scoresDir, CancellationToken cancellationToken = default) =>
        AtomicFile.WriteAllTextAsync(Path.Combine(scoresDir, FileName), JsonSerializer.Serialize(this, Json) + "\n", cancellationToken);
}

public sealed record ScoredShard(
    [property: JsonPropertyName("input")] string Input,
    [property: JsonPropertyName("file")] string File,
    [property: JsonPropertyName("rows")] long Rows,
    [property: JsonPropertyName("quarantined")] long Quarantined,
    [property: JsonPropertyName("sha256")] string Sha256);

public sealed record FailedShard(
    [property: JsonPropertyName("input")] string Input,
    [property: JsonPropertyName("error")] string Error);
