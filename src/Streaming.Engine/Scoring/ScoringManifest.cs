using System.Text.Json.Serialization;

namespace Streaming.Engine.Scoring;

/// <summary><c>scoring.json</c>: what was scored, with which teacher, and which shards are done.</summary>
public sealed record ScoringManifest
{
    public const string FileName = "scoring.json";
    public const string ScoresFolder = "scores";

    [JsonPropertyName("format")] public string Format { get; init; } = "streaming.scores/1";
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
    [JsonPropertyName("compute")] public Streaming.Models.Compute.ComputeEnvironment? Compute { get; init; }
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
