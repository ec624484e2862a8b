using System.Globalization;
using System.Runtime.CompilerServices;
using Streaming.Core.Decode;

namespace Streaming.Core.Ingest;

/// <summary>
/// A text file that lists image paths, one a line (relative paths are relative to the list file),
/// optionally followed by a tab and an integer label (which may be empty), and by a second tab and the image's tags,
/// comma-separated class indices or names (<see cref="TagMapper"/>). Blank lines and lines starting with # are skipped.
/// </summary>
public sealed class ListSource : ImageSource
{
    private readonly string _path;
    private readonly IReadOnlyList<string> _classNames;

    public ListSource(string path, IReadOnlyList<string>? classNames = null)
    {
        if (!File.Exists(path)) throw new StreamingException($"{path}: list file not found");
        _path = Path.GetFullPath(path);
        _classNames = classNames ?? [];
    }

    public override SourceFormat Format => SourceFormat.List;
    public override IReadOnlyList<string> ClassNames => _classNames;

    /// <summary>Whether a line has a tags field (a third, tab-separated): one read of the list, before its images are.</summary>
    public override bool HasTags => _hasTags ??= File.ReadLines(_path).Select(Entry).Any(l => l?.Split('\t').Length >= 3);
    private bool? _hasTags;

    /// <summary>A line's entry, trimmed of spaces but not of tabs (an empty last field, no tags, still counts); null for a blank line or a comment.</summary>
    private static string? Entry(string line)
    {
        string trimmed = line.Trim(' ', '\r', '\n');
        return trimmed.Length == 0 || trimmed.StartsWith('#') ? null : trimmed;
    }

    public override async IAsyncEnumerable<SourceRecord> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        string baseDir = Path.GetDirectoryName(_path) ?? ".";
        using var reader = new StreamReader(_path);
        int lineNo = 0;
        while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
        {
            lineNo++;
            if (Entry(line) is not string trimmed) continue;
            var fields = trimmed.Split('\t');
            string entry = fields[0].Trim();
            int? label = null;
            int[]? tags = null;
            if (fields.Length >= 3)
            {
                var (mapped, bad) = TagMapper.Map(TagMapper.SplitText(string.Join(",", fields[2..])));
                if (bad is not null)
                {
                    yield return new SourceRecord(entry, $"{_path}:{lineNo}", null, Error: new SourceError(Decode.QuarantineReasons.BadLabel, $"bad tags on line {lineNo}: {bad}"));
                    continue;
                }
                tags = mapped;
            }
            if (fields.Length >= 2 && fields[1].Trim().Length > 0)
            {
                string labelText = fields[1].Trim();
                if (!int.TryParse(labelText, NumberStyles.None, CultureInfo.InvariantCulture, out int parsed) || parsed >= Limits.MaxClasses)
                {
                    yield return new SourceRecord(entry, $"{_path}:{lineNo}", null, Error: new SourceError(Decode.QuarantineReasons.BadLabel, $"bad label '{labelText}' on line {lineNo} (0 to {Limits.MaxClasses - 1:N0}, limits.max_classes)"));
                    continue;
                }
                label = parsed;
            }
            string full = Path.IsPathRooted(entry) ? entry : Path.GetFullPath(Path.Combine(baseDir, entry));
            byte[]? bytes = null;
            SourceError? error = null;
            try
            {
                bytes = await File.ReadAllBytesAsync(full, cancellationToken).ConfigureAwait(false);
            }
            catch (FileNotFoundException)
            {
                error = new SourceError(Decode.QuarantineReasons.NotFound, "file not found");
            }
            catch (DirectoryNotFoundException)
            {
                error = new SourceError(Decode.QuarantineReasons.NotFound, "file not found");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                error = new SourceError(Decode.QuarantineReasons.Unreadable, e.Message);
            }
            yield return new SourceRecord(entry, full, label, bytes, Error: error) { Tags = tags };
        }
    }
}
