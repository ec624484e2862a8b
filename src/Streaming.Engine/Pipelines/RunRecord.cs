using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Streaming.Core;
using Streaming.Core.Compute;

namespace Streaming.Engine.Pipelines;

/// <summary>
/// <c>run.json</c>, the record of a pipeline run: the resolved manifest (every key, defaults filled in, as the
/// manifest names them), each stage's key, parameters, input and output hashes, metrics and wall time, the machine,
/// the kernels and the versions. One type with one reader (<see cref="Load"/>) and one writer (<see cref="Save"/>);
/// <c>replay</c>, <c>report</c>, <c>profile</c> and the result table all read it through here.
/// </summary>
public sealed record RunRecord
{
    public const string FileName = "run.json";
    public const string CurrentFormat = "streaming.run/1";

    [JsonPropertyName("format")] public string Format { get; init; } = CurrentFormat;
    [JsonPropertyName("manifest")] public string Manifest { get; init; } = "";
    [JsonPropertyName("manifest_sha256")] public string? ManifestSha256 { get; init; }
    /// <summary>The manifest as the run used it, flat (<c>scoring.k</c>), every key with its value.</summary>
    [JsonPropertyName("resolved")] public SortedDictionary<string, JsonElement> Resolved { get; init; } = new(StringComparer.Ordinal);
    [JsonPropertyName("metrics")] public SortedDictionary<string, double> Metrics { get; init; } = new(StringComparer.Ordinal);
    [JsonPropertyName("stages")] public List<StageEntry> Stages { get; init; } = [];
    [JsonPropertyName("started")] public string Started { get; init; } = "";
    [JsonPropertyName("wall_seconds")] public double WallSeconds { get; init; }
    [JsonPropertyName("machine")] public MachineInfo? Machine { get; init; }
    [JsonPropertyName("compute")] public ComputeEnvironment? Compute { get; init; }
    [JsonPropertyName("versions")] public SortedDictionary<string, string?> Versions { get; init; } = new(StringComparer.Ordinal);
    /// <summary>The engine that ran it: its git commit, and whether its sources differed from it.</summary>
    [JsonPropertyName("engine")] public EngineBuild? Engine { get; init; }
    /// <summary>The stages trained on more than one rank, and their world (N, B/N, hosts); none: every stage ran in this process.</summary>
    [JsonPropertyName("world")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public SortedDictionary<string, Streaming.Models.Training.DistributedInfo>? World { get; init; }

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>A stage by name, or an error that names the record.</summary>
    public StageEntry Stage(string name, string? path = null) =>
        Stages.FirstOrDefault(s => s.Name == name) ?? throw new StreamingException($"{path ?? FileName}: has no '{name}' stage");

    /// <summary>A stage's folder, under the run folder the record lies in.</summary>
    public string StageFolder(string runFolder, string name) => Path.Combine(runFolder, Stage(name, Path.Combine(runFolder, FileName)).Folder);

    /// <summary>A stage's folder, under the run folder the record lies in.</summary>
    public string StageFolder(string runFolder, PipelineStage stage) => StageFolder(runFolder, stage.Name);

    /// <summary>A resolved manifest value as text (null when the run did not have the key).</summary>
    public string? Text(string key) => Resolved.TryGetValue(key, out var v) ? (v.ValueKind == JsonValueKind.String ? v.GetString() : v.GetRawText()) : null;

    public static RunRecord Load(string path)
    {
        if (!File.Exists(path)) throw new StreamingException($"{path}: not found (a run record is the run.json that 'streaming run' writes)");
        try
        {
            var record = JsonSerializer.Deserialize<RunRecord>(File.ReadAllText(path)) ?? throw new JsonException("empty");
            if (record.Resolved.Count == 0 || record.Stages.Count == 0) throw new JsonException("no 'resolved' manifest or 'stages'");
            if (record.Format != CurrentFormat) throw new JsonException($"format '{record.Format}', this engine reads '{CurrentFormat}'");
            return record;
        }
        catch (JsonException e)
        {
            throw new StreamingException($"{path}: not a run record ({e.Message})", e);
        }
    }

    public void Save(string path) => AtomicFile.WriteAllText(path, JsonSerializer.Serialize(this, Json) + "\n");
}

/// <summary>One stage of a run: its cache key, whether it was reused, parameters, input and output hashes, metrics, wall time.</summary>
public sealed record StageEntry(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("key")] string Key,
    [property: JsonPropertyName("reused")] bool Reused,
    [property: JsonPropertyName("wall_seconds")] double WallSeconds,
    [property: JsonPropertyName("folder")] string Folder,
    [property: JsonPropertyName("parameters")] SortedDictionary<string, JsonElement> Parameters,
    [property: JsonPropertyName("inputs")] SortedDictionary<string, string> Inputs,
    [property: JsonPropertyName("outputs")] SortedDictionary<string, string> Outputs,
    [property: JsonPropertyName("output_sha256")] string OutputSha256,
    [property: JsonPropertyName("metrics")] SortedDictionary<string, double> Metrics);

/// <summary>Where a run ran.</summary>
public sealed record MachineInfo(
    [property: JsonPropertyName("os")] string Os,
    [property: JsonPropertyName("cpu")] string Cpu,
    [property: JsonPropertyName("cores")] int Cores,
    [property: JsonPropertyName("threads")] int Threads,
    [property: JsonPropertyName("memory_gib")] double MemoryGib)
{
    public static MachineInfo Here(int threads) => new(System.Runtime.InteropServices.RuntimeInformation.OSDescription, CpuInfo.Current.Model,
        Environment.ProcessorCount, threads, Math.Round(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (double)(1L << 30), 1));
}
