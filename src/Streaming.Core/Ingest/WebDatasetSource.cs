using System.Formats.Tar;
using System.Globalization;
using System.IO.Compression;
using System.Runtime.CompilerServices;
using Streaming.Core.Decode;

namespace Streaming.Core.Ingest;

/// <summary>
/// WebDataset tar shards: members that share a key (the path up to the first dot of the file name)
/// form one sample; its image is key.jpg / key.png / ..., its label the integer in key.cls if present, and its tags (weak
/// labels) those of key.tags (comma- or line-separated class indices or names), else the <c>tags</c> array of key.json.
/// A path may be one tar (.tar, .tar.gz, .tgz) or a folder of them, read in name order.
/// </summary>
public sealed class WebDatasetSource : ImageSource
{
    private readonly List<string> _tars;
    private readonly IReadOnlyList<string> _classNames;

    public WebDatasetSource(string path, IReadOnlyList<string>? classNames = null)
    {
        if (Directory.Exists(path))
        {
            _tars = Directory.EnumerateFiles(path).Where(f => IsTarName(Path.GetFileName(f).ToLowerInvariant())).ToList();
            _tars.Sort(StringComparer.Ordinal);
            if (_tars.Count == 0) throw new StreamingException($"{path}: no .tar files in this folder");
        }
        else
        {
            if (!File.Exists(path)) throw new StreamingException($"{path}: no such file");
            _tars = [path];
        }
        _classNames = classNames ?? [];
    }

    public override SourceFormat Format => SourceFormat.WebDataset;
    public override IReadOnlyList<string> ClassNames => _classNames;

    /// <summary>
    /// Whether one of the first tar's first 1,000 samples has a <c>.tags</c> member, or a <c>.json</c> member with a
    /// <c>tags</c> key (img2dataset writes a .json for every sample, most without tags).
    /// </summary>
    public override bool HasTags => _hasTags ??= PeekTags();
    private bool? _hasTags;

    private bool PeekTags()
    {
        try
        {
            using var stream = OpenTar(_tars[0]);
            using var reader = new TarReader(stream);
            var keys = new HashSet<string>(StringComparer.Ordinal);
            for (TarEntry? e; (e = reader.GetNextEntry(copyData: false)) is not null;)
            {
                string name = e.Name.Replace('\\', '/');
                int slash = name.LastIndexOf('/');
                int dot = name.IndexOf('.', slash + 1);
                if (dot < 0) continue;
                keys.Add(name[..dot]);
                if (keys.Count > 1000) break;
                string ext = name[(dot + 1)..].ToLowerInvariant();
                if (ext == "tags") return true;
                if (ext == "json" && e.DataStream is not null && e.Length <= 1 << 20)
                {
                    var json = new byte[e.Length];
                    e.DataStream.ReadExactly(json);
                    if (JsonTags(json, TagMapper) is (not null, _) or (_, not null)) return true;
                }
            }
        }
        catch (Exception e) when (e is IOException or InvalidDataException or FormatException or OverflowException or ArgumentException or UnauthorizedAccessException)
        {
            // A tar that cannot be read fails properly when it is read; no tags column is assumed here.
        }
        return false;
    }

    internal static bool IsTarName(string lowerName) =>
        lowerName.EndsWith(".tar", StringComparison.Ordinal) || lowerName.EndsWith(".tar.gz", StringComparison.Ordinal) || lowerName.EndsWith(".tgz", StringComparison.Ordinal);

    private static readonly string[] ImageMembers = ["jpg", "jpeg", "png", "webp", "bmp", "gif", "img", "image"];

    public override async IAsyncEnumerable<SourceRecord> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        bool prefix = _tars.Count > 1;
        foreach (var tar in _tars)
        {
            string stem = Path.GetFileName(tar);
            foreach (var ext in new[] { ".tar.gz", ".tgz", ".tar" })
                if (stem.EndsWith(ext, StringComparison.OrdinalIgnoreCase)) { stem = stem[..^ext.Length]; break; }

            await using var stream = OpenTar(tar);
            await using var reader = new TarReader(stream);

            string? key = null;
            var members = new Dictionary<string, byte[]>(StringComparer.Ordinal);
            int index = 0;
            while (true)
            {
                TarEntry? entry;
                try
                {
                    entry = await reader.GetNextEntryAsync(copyData: false, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException and not StreamingException and not OutOfMemoryException)
                {
                    // Whatever the tar reader throws on a corrupt header (format, overflow, out-of-range sizes...).
                    throw new StreamingException(index == 0 ? $"{tar}: not a tar archive ({e.Message})" : $"{tar}: corrupt tar after member {index} ({e.Message})", e);
                }
                if (entry is null) break;
                index++;
                if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile)) continue;
                string name = entry.Name.Replace('\\', '/');
                if (Escapes(name)) throw new StreamingException($"{tar}: member '{entry.Name}' escapes the archive's folder; refusing this tar");

                int slash = name.LastIndexOf('/');
                int dot = name.IndexOf('.', slash + 1);
                string memberKey = dot < 0 ? name : name[..dot];
                string ext = dot < 0 ? "" : name[(dot + 1)..].ToLowerInvariant();
                if (key is not null && memberKey != key)
                {
                    yield return MakeSample(tar, stem, prefix, key, members, Limits, TagMapper);
                    members.Clear();
                }
                key = memberKey;
                if (entry.Length > Limits.MaxMemberBytes)
                    throw new StreamingException($"{tar}: member '{entry.Name}' is {entry.Length:N0} bytes, over the limit of {Limits.MaxMemberBytes:N0} (limits.max_member_mb)");
                byte[] data = new byte[entry.Length];
                if (entry.DataStream is not null)
                {
                    try
                    {
                        await entry.DataStream.ReadExactlyAsync(data, cancellationToken).ConfigureAwait(false);
                    }
                    catch (EndOfStreamException e)
                    {
                        throw new StreamingException($"{tar}: member '{entry.Name}' is cut short", e);
                    }
                    catch (Exception e) when (e is InvalidDataException or IOException or OverflowException)
                    {
                        throw new StreamingException($"{tar}: member '{entry.Name}' cannot be read ({e.Message})", e);
                    }
                }
                members[ext] = data;
            }
            if (key is not null) yield return MakeSample(tar, stem, prefix, key, members, Limits, TagMapper);
        }
    }

    /// <summary>A tar's bytes, decompressed when its name says gzip (the stream owns the file).</summary>
    private static Stream OpenTar(string tar)
    {
        var file = new FileStream(tar, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        string lower = tar.ToLowerInvariant();
        return lower.EndsWith(".gz", StringComparison.Ordinal) || lower.EndsWith(".tgz", StringComparison.Ordinal)
            ? new GZipStream(file, CompressionMode.Decompress) : file;
    }

    private static bool Escapes(string name)
    {
        if (name.StartsWith('/') || (name.Length > 1 && name[1] == ':')) return true;
        foreach (var part in name.Split('/'))
            if (part == "..") return true;
        return false;
    }

    private static SourceRecord MakeSample(string tar, string stem, bool prefix, string key, Dictionary<string, byte[]> members, SourceLimits limits, TagMapper mapper)
    {
        string id = prefix ? $"{stem}/{key}" : key;
        string source = $"{tar}:{key}";
        string? imageExt = ImageMembers.FirstOrDefault(members.ContainsKey);
        if (imageExt is null)
            return new SourceRecord(id, source, null, Error: new SourceError(Decode.QuarantineReasons.NoImage, $"no image member (has: {string.Join(", ", members.Keys.Order(StringComparer.Ordinal))})"));
        int? label = null;
        if (members.TryGetValue("cls", out var cls))
        {
            string text = System.Text.Encoding.UTF8.GetString(cls).Trim();
            if (!int.TryParse(text, NumberStyles.AllowLeadingWhite | NumberStyles.AllowTrailingWhite, CultureInfo.InvariantCulture, out int value) || value < 0)
                return new SourceRecord(id, source, null, Error: new SourceError(Decode.QuarantineReasons.BadLabel, $"bad label in {key}.cls: '{(text.Length > 40 ? text[..40] : text)}'"));
            if (value >= limits.MaxClasses)
                return new SourceRecord(id, source, null, Error: new SourceError(Decode.QuarantineReasons.BadLabel, $"label {value:N0} in {key}.cls is over the limit of {limits.MaxClasses:N0} classes (limits.max_classes)"));
            label = value;
        }
        int[]? tags = null;
        string? bad = null;
        if (members.TryGetValue("tags", out var tagText))
            (tags, bad) = mapper.Map(TagMapper.SplitText(System.Text.Encoding.UTF8.GetString(tagText)));
        else if (members.TryGetValue("json", out var json))
            (tags, bad) = JsonTags(json, mapper);
        if (bad is not null)
            return new SourceRecord(id, source, null, Error: new SourceError(Decode.QuarantineReasons.BadLabel, $"bad tags in {key}: {bad}"));
        return new SourceRecord(id, $"{source}.{imageExt}", label, members[imageExt]) { Tags = tags };
    }

    /// <summary>The <c>tags</c> array of a sample's JSON (strings or integers); no tags when the JSON has none.</summary>
    private static (int[]? Tags, string? Error) JsonTags(byte[] json, TagMapper mapper)
    {
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(json);
            if (doc.RootElement.ValueKind != System.Text.Json.JsonValueKind.Object || !doc.RootElement.TryGetProperty("tags", out var tags)
                || tags.ValueKind == System.Text.Json.JsonValueKind.Null) return (null, null);
            if (tags.ValueKind != System.Text.Json.JsonValueKind.Array) return (null, "'tags' in its .json is not an array");
            var items = new List<string>();
            foreach (var t in tags.EnumerateArray())
            {
                if (t.ValueKind == System.Text.Json.JsonValueKind.String) items.Add(t.GetString()!);
                else if (t.ValueKind == System.Text.Json.JsonValueKind.Number && t.TryGetInt32(out int i) && i >= 0) items.Add(i.ToString(CultureInfo.InvariantCulture));
                else return (null, $"tag {(t.GetRawText() is var raw && raw.Length > 40 ? raw[..40] : raw)} in its .json is neither a class name nor a class index");
            }
            return mapper.Map(items);
        }
        catch (System.Text.Json.JsonException e)
        {
            return (null, $"its .json does not parse ({e.Message})");
        }
    }
}
