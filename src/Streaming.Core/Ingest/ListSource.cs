using System.Globalization;
using System.Runtime.CompilerServices;
using Streaming.Core.Decode;

namespace Streaming.Core.Ingest;

/// <summary>
/// A text file that lists image paths, one a line (relative paths are relative to the list file),
/// optionally followed by a tab and an integer label. Blank lines and lines starting with # are skipped.
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

    public override async IAsyncEnumerable<SourceRecord> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        string baseDir = Path.GetDirectoryName(_path) ?? ".";
        using var reader = new StreamReader(_path);
        int lineNo = 0;
        while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
        {
            lineNo++;
            string trimmed = line.Trim();
            if (trimmed.Length == 0 || trimmed.StartsWith('#')) continue;
            string entry = trimmed;
            int? label = null;
            int tab = trimmed.LastIndexOf('\t');
            if (tab > 0)
            {
                entry = trimmed[..tab].Trim();
                string labelText = trimmed[(tab + 1)..].Trim();
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
            yield return new SourceRecord(entry, full, label, bytes, Error: error);
        }
    }
}
