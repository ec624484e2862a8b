namespace Streaming.Core.Ingest;

/// <summary>
/// Lists folders under the link policy that folder sources and the daemon's inbox share, so that a folder can never
/// lead the reader out of itself or round in a loop:
/// <list type="bullet">
/// <item>a link to a file inside the folder being read is read like the file;</item>
/// <item>a link to a folder is never walked (when its target lies inside, the target is walked where it is);</item>
/// <item>a link whose target lies outside the folder, is missing or loops is skipped, and counted;</item>
/// <item>anything but regular files and folders (named pipes, sockets, devices) is skipped, and counted.</item>
/// </list>
/// </summary>
public static class FolderWalk
{
    private static readonly EnumerationOptions Plain = new() { AttributesToSkip = 0, RecurseSubdirectories = false, IgnoreInaccessible = false };

    /// <summary>The files and subfolders directly in <paramref name="dir"/>, each sorted by ordinal name; links outside <paramref name="root"/> skipped.</summary>
    public static (List<string> Files, List<string> Folders, int SkippedLinks) List(string root, string dir)
    {
        root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root));
        var files = new List<string>();
        var folders = new List<string>();
        int skipped = 0;
        foreach (var entry in new DirectoryInfo(dir).EnumerateFileSystemInfos("*", Plain))
        {
            if (entry.LinkTarget is null)
            {
                if (entry is DirectoryInfo) folders.Add(entry.FullName);
                else if (FileKind.IsRegularFile(entry.FullName)) files.Add(entry.FullName);
                else skipped++;
                continue;
            }
            // A link: read it only when it ends at a file inside the root.
            FileSystemInfo? target;
            try
            {
                target = entry.ResolveLinkTarget(returnFinalTarget: true);
            }
            catch (IOException)
            {
                target = null; // a loop of links, or too many levels
            }
            if (target is FileInfo { Exists: true } file && Inside(root, file.FullName) && FileKind.IsRegularFile(file.FullName)) files.Add(entry.FullName);
            else skipped++;
        }
        files.Sort(StringComparer.Ordinal);
        folders.Sort(StringComparer.Ordinal);
        return (files, folders, skipped);
    }

    /// <summary>Every file under <paramref name="dir"/> in a fixed order (each folder's files, then its subfolders), with the links skipped.</summary>
    public static IEnumerable<string> Files(string root, string dir, Action<int>? skippedLinks = null)
    {
        var (files, folders, skipped) = List(root, dir);
        if (skipped > 0) skippedLinks?.Invoke(skipped);
        foreach (var f in files) yield return f;
        foreach (var d in folders)
            foreach (var f in Files(root, d, skippedLinks)) yield return f;
    }

    /// <summary>Whether <paramref name="path"/> is a symbolic link.</summary>
    public static bool IsLink(string path)
    {
        FileSystemInfo info = Directory.Exists(path) ? new DirectoryInfo(path) : new FileInfo(path);
        return info.LinkTarget is not null;
    }

    private static bool Inside(string root, string path) =>
        path.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal);
}
