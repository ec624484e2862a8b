using System.Runtime.CompilerServices;
using Streaming.Core.Decode;

namespace Streaming.Core.Ingest;

/// <summary>
/// A folder tree of images. Top-level subfolders that hold images are classes (sorted by name,
/// ordinal, label = position); images directly in the root are unlabeled. A flat folder is unlabeled.
/// Symbolic links follow <see cref="FolderWalk"/>'s policy: never out of the folder, never round a loop.
/// </summary>
public sealed class FolderSource : ImageSource
{
    private readonly string _root;
    private readonly List<string> _classDirs;

    public FolderSource(string root)
    {
        if (!Directory.Exists(root)) throw new StreamingException($"{root}: not a folder");
        _root = Path.GetFullPath(root);
        _classDirs = FolderWalk.List(_root, _root).Folders.Where(ContainsImage).ToList();
    }

    public override SourceFormat Format => SourceFormat.Folder;
    public override IReadOnlyList<string> ClassNames => _classDirs.Select(d => Path.GetFileName(d)).ToList();

    private bool ContainsImage(string dir) => FolderWalk.Files(_root, dir).Any(ImageFiles.IsImagePath);

    private IEnumerable<string> Top(string dir)
    {
        var (files, _, skipped) = FolderWalk.List(_root, dir);
        Ignored += skipped;
        return files;
    }

    public override async IAsyncEnumerable<SourceRecord> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        // Root-level images first (unlabeled), then each class folder in label order.
        var groups = new List<(string Dir, int? Label, bool Recursive)> { (_root, null, false) };
        for (int i = 0; i < _classDirs.Count; i++) groups.Add((_classDirs[i], i, true));
        foreach (var (dir, label, recursive) in groups)
        {
            // Links skipped by the policy count as ignored inputs.
            var files = recursive ? FolderWalk.Files(_root, dir, n => Ignored += n) : Top(dir);
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
