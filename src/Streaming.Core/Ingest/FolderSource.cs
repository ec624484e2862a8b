using System.Runtime.CompilerServices;
using Streaming.Core.Decode;

namespace Streaming.Core.Ingest;

/// <summary>
/// A folder tree of images. Top-level subfolders that hold images are classes (sorted by name,
/// ordinal, label = position); images directly in the root are unlabeled. A flat folder is unlabeled.
/// </summary>
public sealed class FolderSource : ImageSource
{
    private readonly string _root;
    private readonly List<string> _classDirs;

    public FolderSource(string root)
    {
        if (!Directory.Exists(root)) throw new StreamingException($"{root}: not a folder");
        _root = Path.GetFullPath(root);
        _classDirs = SortedEntries(Directory.EnumerateDirectories(_root)).Where(ContainsImage).ToList();
    }

    public override SourceFormat Format => SourceFormat.Folder;
    public override IReadOnlyList<string> ClassNames => _classDirs.Select(d => Path.GetFileName(d)).ToList();

    private static List<string> SortedEntries(IEnumerable<string> entries)
    {
        var list = entries.ToList();
        list.Sort(StringComparer.Ordinal);
        return list;
    }

    private static bool ContainsImage(string dir) =>
        Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Any(ImageFiles.IsImagePath);

    /// <summary>Files under <paramref name="dir"/> in a fixed order: each folder's files by ordinal name, then its subfolders.</summary>
    private static IEnumerable<string> Walk(string dir)
    {
        foreach (var f in SortedEntries(Directory.EnumerateFiles(dir))) yield return f;
        foreach (var d in SortedEntries(Directory.EnumerateDirectories(dir)))
            foreach (var f in Walk(d)) yield return f;
    }

    public override async IAsyncEnumerable<SourceRecord> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        // Root-level images first (unlabeled), then each class folder in label order.
        var groups = new List<(string Dir, int? Label, bool Recursive)> { (_root, null, false) };
        for (int i = 0; i < _classDirs.Count; i++) groups.Add((_classDirs[i], i, true));
        foreach (var (dir, label, recursive) in groups)
        {
            var files = recursive ? Walk(dir) : SortedEntries(Directory.EnumerateFiles(dir));
            foreach (var file in files)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (!ImageFiles.IsImagePath(file))
                {
                    Ignored++;
                    continue;
                }
                string id = Path.GetRelativePath(_root, file).Replace('\\', '/');
                byte[]? bytes = null;
                SourceError? error = null;
                try
                {
                    bytes = await File.ReadAllBytesAsync(file, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    error = new SourceError(Decode.QuarantineReasons.Unreadable, e.Message);
                }
                yield return new SourceRecord(id, file, label, bytes, Error: error);
            }
        }
    }
}
