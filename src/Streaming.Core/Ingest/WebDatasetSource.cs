using System.Formats.Tar;
using System.Globalization;
using System.IO.Compression;
using System.Runtime.CompilerServices;
using Streaming.Core.Decode;

namespace Streaming.Core.Ingest;

/// <summary>
/// WebDataset tar shards: members that share a key (the path up to the first dot of the file name)
/// form one sample; its image is key.jpg / key.png / ..., its label the integer in key.cls if present.
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

            await using var file = new FileStream(tar, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
            Stream stream = file;
            string lower = tar.ToLowerInvariant();
            if (lower.EndsWith(".gz", StringComparison.Ordinal) || lower.EndsWith(".tgz", StringComparison.Ordinal))
                stream = new GZipStream(file, CompressionMode.Decompress);
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
                    yield return MakeSample(tar, stem, prefix, key, members, Limits);
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
            if (key is not null) yield return MakeSample(tar, stem, prefix, key, members, Limits);
        }
    }

    private static bool Escapes(string name)
    {
        if (name.StartsWith('/') || (name.Length > 1 && name[1] == ':')) return true;
        foreach (var part in name.Split('/'))
            if (part == "..") return true;
        return false;
    }

    private static SourceRecord MakeSample(string tar, string stem, bool prefix, string key, Dictionary<string, byte[]> members, SourceLimits limits)
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
        return new SourceRecord(id, $"{source}.{imageExt}", label, members[imageExt]);
    }
}
