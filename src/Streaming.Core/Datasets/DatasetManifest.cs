using System.Text.Json;
using System.Text.Json.Serialization;
using Streaming.Core.Decode;

namespace Streaming.Core.Datasets;

/// <summary>One shard as the manifest lists it.</summary>
public sealed record ShardEntry(
    [property: JsonPropertyName("file")] string File,
    [property: JsonPropertyName("rows")] long Rows,
    [property: JsonPropertyName("bytes")] long Bytes,
    [property: JsonPropertyName("sha256")] string Sha256);

/// <summary>
/// <c>dataset.json</c>: the inventory of a dataset folder. It holds nothing that varies between
/// two runs over the same input (no clock, no host), so equal inputs give byte-identical manifests.
/// </summary>
public sealed record DatasetManifest
{
    public const string FileName = "dataset.json";
    public const string CurrentFormat = "streaming.image-dataset/1";

    [JsonPropertyName("format")] public string Format { get; init; } = CurrentFormat;
    [JsonPropertyName("name")] public string Name { get; init; } = "";
    /// <summary>What the dataset was made from: the ingest source, or the parent of a split.</summary>
    [JsonPropertyName("origin")] public string Origin { get; init; } = "";
    [JsonPropertyName("rows")] public long Rows { get; init; }
    [JsonPropertyName("labeled")] public long Labeled { get; init; }
    [JsonPropertyName("unlabeled")] public long Unlabeled { get; init; }
    [JsonPropertyName("classes")] public IReadOnlyList<string> Classes { get; init; } = [];
    [JsonPropertyName("class_counts")] public IReadOnlyList<long> ClassCounts { get; init; } = [];
    [JsonPropertyName("shards")] public IReadOnlyList<ShardEntry> Shards { get; init; } = [];
    [JsonPropertyName("shard_size")] public int ShardSize { get; init; }
    [JsonPropertyName("compression")] public string Compression { get; init; } = "";
    [JsonPropertyName("verified")] public bool Verified { get; init; }
    [JsonPropertyName("duplicates")] public long Duplicates { get; init; }
    [JsonPropertyName("quarantined")] public long Quarantined { get; init; }
    [JsonPropertyName("quarantine_file")] public string? QuarantineFile { get; init; }
    [JsonPropertyName("quarantine_reasons")] public IReadOnlyDictionary<string, long> QuarantineReasons { get; init; } = new SortedDictionary<string, long>(StringComparer.Ordinal);
    /// <summary>For an unlabeled split: the Parquet side file (id, label) with the labels withheld from the shards.</summary>
    [JsonPropertyName("withheld_labels_file")] public string? WithheldLabelsFile { get; init; }
    /// <summary>
    /// With a <c>tags</c> column in its shards (weak labels): how many images have at least one tag; null (absent) for a
    /// dataset without the column. Datasets made from this one keep the column (<see cref="HasTags"/>).
    /// </summary>
    [JsonPropertyName("tagged")] public long? Tagged { get; init; }
    [JsonIgnore] public bool HasTags => Tagged is not null;
    /// <summary>Free-form facts of how the dataset was made (split seed, per-class count, ...).</summary>
    [JsonPropertyName("parameters")] public IReadOnlyDictionary<string, string> Parameters { get; init; } = new SortedDictionary<string, string>(StringComparer.Ordinal);

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions) + "\n";

    public void Save(string folder)
    {
        AtomicFile.WriteAllText(Path.Combine(folder, FileName), ToJson());
    }

    /// <summary>Loads and checks a dataset folder's manifest; a problem fails with one line naming the file.</summary>
    public static DatasetManifest Load(string folder)
    {
        if (!Directory.Exists(folder)) throw new StreamingException($"{folder}: dataset folder not found");
        string path = Path.Combine(folder, FileName);
        if (!File.Exists(path)) throw new StreamingException($"{path}: not found (is {folder} a dataset made by 'streaming ingest'?)");
        DatasetManifest? m;
        try
        {
            m = JsonSerializer.Deserialize<DatasetManifest>(File.ReadAllText(path), JsonOptions);
        }
        catch (JsonException e)
        {
            throw new StreamingException($"{path}: bad manifest: {e.Message}", e);
        }
        if (m is null) throw new StreamingException($"{path}: bad manifest: empty");
        if (m.Format != CurrentFormat) throw new StreamingException($"{path}: bad manifest: format '{m.Format}', expected '{CurrentFormat}'");
        if (m.ClassCounts.Count != m.Classes.Count)
            throw new StreamingException($"{path}: bad manifest: {m.Classes.Count} classes but {m.ClassCounts.Count} class counts");
        long rows = 0;
        foreach (var s in m.Shards)
        {
            if (s.File.Contains('/') || s.File.Contains('\\') || s.File.StartsWith('.'))
                throw new StreamingException($"{path}: bad manifest: shard name '{s.File}' must be a plain file name");
            if (!File.Exists(Path.Combine(folder, s.File))) throw new StreamingException($"{path}: shard '{s.File}' is listed but missing");
            rows += s.Rows;
        }
        if (rows != m.Rows) throw new StreamingException($"{path}: bad manifest: shards hold {rows} rows, manifest says {m.Rows}");
        return m;
    }

    /// <summary>Full paths of the shards, in manifest order.</summary>
    public IEnumerable<string> ShardPaths(string folder) => Shards.Select(s => Path.Combine(folder, s.File));

    /// <summary>Width, height and native channels of the first image (the first labeled one when <paramref name="labeledOnly"/>).</summary>
    public async Task<(int Width, int Height, int Channels)> FirstImageAsync(string folder, bool labeledOnly, CancellationToken cancellationToken = default)
    {
        foreach (var shard in ShardPaths(folder))
            await foreach (var r in Streaming.Core.Shards.ImageShardReader.ReadAsync(shard, cancellationToken).ConfigureAwait(false))
                if (!labeledOnly || r.Label is not null)
                {
                    int w = r.Width, h = r.Height;
                    if (w == 0 || h == 0)
                    {
                        var check = Streaming.Core.Decode.ImageDecoder.Check(r.Image);
                        (w, h) = (check.Width, check.Height);
                    }
                    return (w, h, Streaming.Core.Decode.ImageDecoder.NativeChannels(r.Image));
                }
        throw new StreamingException($"{folder}: has no {(labeledOnly ? "labeled " : "")}images");
    }
}
