using System.Text.Json;
using System.Text.Json.Serialization;

using Streaming.Core.Compute;

namespace Streaming.Daemon;

/// <summary>A shard the daemon has scored and folded into the heaps: recorded once, never counted twice.</summary>
public sealed record DoneShard(
    [property: JsonPropertyName("key")] string Key,
    [property: JsonPropertyName("input")] string Input,
    [property: JsonPropertyName("drop")] string Drop,
    [property: JsonPropertyName("score_file")] string ScoreFile,
    [property: JsonPropertyName("score_sha256")] string ScoreSha256,
    [property: JsonPropertyName("rows")] long Rows,
    [property: JsonPropertyName("quarantined")] long Quarantined,
    [property: JsonPropertyName("seconds")] double Seconds,
    [property: JsonPropertyName("finished_utc")] DateTime FinishedUtc,
    [property: JsonPropertyName("source")] string? Source = null);

/// <summary>A drop that went to quarantine/ instead, with why.</summary>
public sealed record QuarantinedDrop(
    [property: JsonPropertyName("drop")] string Drop,
    [property: JsonPropertyName("moved_to")] string MovedTo,
    [property: JsonPropertyName("reason")] string Reason,
    [property: JsonPropertyName("at_utc")] DateTime AtUtc);

public sealed record HeapsPointer(
    [property: JsonPropertyName("file")] string File,
    [property: JsonPropertyName("covers")] int Covers);

public sealed record SnapshotPointer(
    [property: JsonPropertyName("version")] int Version,
    [property: JsonPropertyName("folder")] string Folder,
    [property: JsonPropertyName("covers")] int Covers,
    [property: JsonPropertyName("published_utc")] DateTime PublishedUtc);

/// <summary>
/// What the daemon remembers across restarts. Two append-only logs, <c>done.jsonl</c> (one line per shard scored
/// and folded into the heaps) and <c>quarantine.jsonl</c> (one line per drop refused), each line appended and
/// flushed to disk before the next step; a line cut short by a crash does not count. And <c>state.json</c>
/// (identity, heaps and snapshot pointers), written to a temporary name then renamed, so it is always whole.
/// The heaps checkpoint covers the first <see cref="HeapsPointer.Covers"/> done shards; the rest are replayed
/// from their score shards on restart.
/// </summary>
public sealed class DaemonState
{
    public const string FileName = "state.json";
    public const string DoneLog = "done.jsonl";
    public const string QuarantineLog = "quarantine.jsonl";
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    [JsonPropertyName("format")] public string Format { get; set; } = "streaming.daemon-state/1";
    [JsonPropertyName("identity")] public SortedDictionary<string, string> Identity { get; set; } = new(StringComparer.Ordinal);
    [JsonPropertyName("classes")] public List<string> Classes { get; set; } = [];
    [JsonIgnore] public List<DoneShard> Done { get; private set; } = [];
    [JsonIgnore] public List<QuarantinedDrop> QuarantinedDrops { get; private set; } = [];
    /// <summary>Folder and tar drops already ingested (drop name -> ingested dataset folder), so a restart does not ingest them again.</summary>
    [JsonPropertyName("ingested")] public SortedDictionary<string, string> Ingested { get; set; } = new(StringComparer.Ordinal);
    [JsonPropertyName("heaps")] public HeapsPointer? Heaps { get; set; }
    [JsonPropertyName("snapshot")] public SnapshotPointer? Snapshot { get; set; }
    [JsonPropertyName("restarts")] public int Restarts { get; set; }
    /// <summary>The kernels of the latest start: score shards are byte-identical only under the same ones.</summary>
    [JsonPropertyName("compute")] public Streaming.Core.Compute.ComputeEnvironment? Compute { get; set; }
    /// <summary>The engine that last started on this state folder (commit, dirty).</summary>
    [JsonPropertyName("engine")] public Streaming.Core.EngineBuild? Engine { get; set; } = Streaming.Core.BuildInfo.Current;

    public static DaemonState? Load(string folder)
    {
        string path = Path.Combine(folder, FileName);
        if (!File.Exists(path)) return null;
        DaemonState state;
        try
        {
            state = JsonSerializer.Deserialize<DaemonState>(File.ReadAllText(path)) ?? throw new JsonException("empty");
        }
        catch (JsonException e)
        {
            throw new Core.StreamingException($"{path}: unreadable daemon state ({e.Message})");
        }
        state.Done = ReadLog<DoneShard>(Path.Combine(folder, DoneLog));
        state.QuarantinedDrops = ReadLog<QuarantinedDrop>(Path.Combine(folder, QuarantineLog));
        return state;
    }

    /// <summary>Complete lines only: a last line without its newline was being written when the process died.</summary>
    private static List<T> ReadLog<T>(string path)
    {
        var result = new List<T>();
        if (!File.Exists(path)) return result;
        string text = File.ReadAllText(path);
        int end = text.LastIndexOf('\n');
        if (end < text.Length - 1)
        {
            // Cut the torn tail off, so the next append starts on a fresh line.
            using var f = new FileStream(path, FileMode.Open, FileAccess.Write);
            f.SetLength(System.Text.Encoding.UTF8.GetByteCount(text.AsSpan(0, end + 1)));
        }
        int lineNo = 0;
        foreach (var line in text[..(end + 1)].Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            lineNo++;
            try
            {
                result.Add(JsonSerializer.Deserialize<T>(line) ?? throw new JsonException("null"));
            }
            catch (JsonException e)
            {
                throw new Core.StreamingException($"{path}:{lineNo}: unreadable line ({e.Message})");
            }
        }
        return result;
    }

    public void AppendDone(string folder, DoneShard shard)
    {
        Append(Path.Combine(folder, DoneLog), shard);
        Done.Add(shard);
    }

    /// <summary>Takes entries out of done.jsonl (rewritten atomically): recovery forgets those whose score shards were lost.</summary>
    public void ForgetDone(string folder, IReadOnlyCollection<DoneShard> lost)
    {
        Done = Done.Where(d => !lost.Contains(d)).ToList();
        Core.AtomicFile.WriteAllText(Path.Combine(folder, DoneLog), string.Concat(Done.Select(d => JsonSerializer.Serialize(d) + "\n")));
    }

    public void AppendQuarantined(string folder, QuarantinedDrop drop)
    {
        Append(Path.Combine(folder, QuarantineLog), drop);
        QuarantinedDrops.Add(drop);
    }

    private static void Append<T>(string path, T entry)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(JsonSerializer.Serialize(entry) + "\n");
        using var f = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read);
        long before = f.Length;
        try
        {
            f.Write(bytes);
            f.Flush(flushToDisk: true);
        }
        catch (IOException)
        {
            // A full disk: take back what part of the line got written, so the log stays whole for the next append.
            try
            {
                f.SetLength(before);
            }
            catch (IOException)
            {
                // The torn tail is cut off on the next load.
            }
            throw;
        }
    }

    public void Save(string folder)
    {
        Core.AtomicFile.Write(Path.Combine(folder, FileName), stream => JsonSerializer.Serialize(stream, this, Json));
    }
}
