namespace Streaming.Daemon;

public enum DropKind { Shard, Folder, Tar, ShardList, Link, Special, Unreadable, Unknown }

/// <summary>Something dropped into the inbox: a file or a folder, taken once it has settled.</summary>
public sealed record Drop(string Name, string Path, DropKind Kind, string? Error = null)
{
    public static DropKind KindOf(string path)
    {
        if (Streaming.Core.Ingest.FolderWalk.IsLink(path)) return DropKind.Link;
        if (Directory.Exists(path)) return DropKind.Folder;
        if (!Streaming.Core.FileKind.IsRegularFile(path)) return DropKind.Special;
        return System.IO.Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".parquet" => DropKind.Shard,
            ".tar" => DropKind.Tar,
            ".list" or ".txt" => DropKind.ShardList,
            _ => DropKind.Unknown,
        };
    }
}

/// <summary>
/// Lists the inbox and says which entries have settled: unchanged (size, newest modification time, file count)
/// across two listings and not modified for the settle time. A file renamed into the inbox (the recommended way:
/// write elsewhere, then <c>mv</c>) is old already and is taken on the second listing; a file still being
/// copied keeps changing and waits. Names starting with '.' and ending in .partial, .tmp or .part are never taken.
/// </summary>
public sealed class Inbox
{
    private readonly string _folder;
    private readonly TimeSpan _settle;
    private readonly RetryCounter _failing;
    private readonly Dictionary<string, (long Size, DateTime Newest, int Files)> _seen = new(StringComparer.Ordinal);

    /// <param name="retryTries">An entry that cannot be listed this many times ...</param>
    /// <param name="retryWindow">... over at least this long is handed on as <see cref="DropKind.Unreadable"/>, to be quarantined.</param>
    public Inbox(string folder, TimeSpan settle, int retryTries = 5, TimeSpan? retryWindow = null)
    {
        _folder = folder;
        _settle = settle;
        _failing = new RetryCounter(retryTries, retryWindow ?? TimeSpan.FromMinutes(1));
        Directory.CreateDirectory(folder);
    }

    /// <summary>Entries present now that are not hidden or temporary (settled or not).</summary>
    public int Present { get; private set; }

    /// <summary>The settled entries, in name order (ordinal).</summary>
    public List<Drop> Scan()
    {
        var now = DateTime.UtcNow;
        var result = new List<Drop>();
        var present = new HashSet<string>(StringComparer.Ordinal);
        foreach (var path in Directory.EnumerateFileSystemEntries(_folder).Order(StringComparer.Ordinal))
        {
            string name = Path.GetFileName(path);
            if (name.StartsWith('.') || name.EndsWith(".partial", StringComparison.Ordinal) || name.EndsWith(".tmp", StringComparison.Ordinal)
                || name.EndsWith(".part", StringComparison.Ordinal)) continue;
            present.Add(name);
            (long, DateTime, int) signature;
            try
            {
                signature = Signature(path);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Vanished or unreadable mid-listing (or worse: .NET throws ArgumentException past PATH_MAX): look again next time; one that keeps failing is handed on to be quarantined.
                var (tries, since, giveUp) = _failing.Failed(name);
                if (giveUp) result.Add(new Drop(name, path, DropKind.Unreadable, $"could not be listed {tries} times over {since.TotalSeconds:F0} s: {e.Message}"));
                continue;
            }
            _failing.Clear(name);
            bool stable = _seen.TryGetValue(name, out var before) && before == signature;
            _seen[name] = signature;
            if (stable && now - signature.Item2 >= _settle) result.Add(new Drop(name, path, Drop.KindOf(path)));
        }
        foreach (var gone in _seen.Keys.Where(k => !present.Contains(k)).ToList()) _seen.Remove(gone);
        _failing.KeepOnly(present);
        Present = present.Count;
        return result;
    }

    /// <summary>Size, newest change and file count; links are not followed (a link drop is its own entry, see <see cref="DropKind.Link"/>).</summary>
    private static (long, DateTime, int) Signature(string path)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget is not null) return (0, info.LastWriteTimeUtc, 1);
        if (info.Exists) return (info.Length, info.LastWriteTimeUtc, 1);
        var dir = new DirectoryInfo(path);
        long size = 0;
        int files = 0;
        var newest = dir.LastWriteTimeUtc;
        foreach (var f in Streaming.Core.Ingest.FolderWalk.Files(path, path).Select(f => new FileInfo(f)))
        {
            size += f.Length;
            files++;
            if (f.LastWriteTimeUtc > newest) newest = f.LastWriteTimeUtc;
        }
        return (size, newest, files);
    }
}
