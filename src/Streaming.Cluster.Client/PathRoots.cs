using System.Runtime.InteropServices;

namespace Streaming.Cluster.Client;

/// <summary>
/// Where a job may read and write: a worker's roots (<c>--data-root</c>, <c>--out-root</c>) against a job's paths, and the
/// rule for the names inside a job (relative, no <c>..</c>). Paths are compared after <c>..</c> and symbolic links are
/// resolved, so that neither a <c>..</c> nor a link inside a root leads out of it.
/// </summary>
public static partial class PathRoots
{
    /// <summary>Null when <paramref name="path"/> lies in one of <paramref name="roots"/> (or there are none), else the refusal in one line.</summary>
    public static string? Refusal(string what, string path, IReadOnlyList<string> roots, string flag)
    {
        if (roots.Count == 0) return null;
        string real = Real(path);
        foreach (var root in roots)
        {
            string r = Real(root).TrimEnd('/');
            if (real == r || real.StartsWith(r + "/", StringComparison.Ordinal)) return null;
        }
        return $"{what} {path}{(real != Path.GetFullPath(path) ? $" (that is {real})" : "")} lies outside this worker's {flag} ({string.Join(", ", roots)})";
    }

    /// <summary>Null when <paramref name="name"/> is a relative path with no <c>..</c> (a shard's input or score file, inside its folder), else why not.</summary>
    public static string? NameProblem(string name)
    {
        if (name.Length == 0) return "an empty name";
        if (Path.IsPathRooted(name)) return $"'{name}' is an absolute path; names inside a job are relative to its data or output folder";
        if (name.Replace('\\', '/').Split('/').Any(part => part == ".."))
            return $"'{name}' contains '..'; names inside a job stay inside its data or output folder";
        return null;
    }

    /// <summary>The canonical path: the longest prefix that exists, with its links resolved (realpath), and the rest as written.</summary>
    internal static string Real(string path)
    {
        string full = Path.GetFullPath(path);
        string existing = full, rest = "";
        while (!Directory.Exists(existing) && !File.Exists(existing))
        {
            string? parent = Path.GetDirectoryName(existing);
            if (parent is null) return full;
            rest = Path.Combine(Path.GetFileName(existing), rest);
            existing = parent;
        }
        string resolved = RealPathNative(existing) ?? existing;
        return rest.Length == 0 ? resolved : Path.Combine(resolved, rest).TrimEnd('/');
    }

    [LibraryImport("libc", EntryPoint = "realpath", StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint RealPath(string path, nint resolved);

    [LibraryImport("libc", EntryPoint = "free")]
    private static partial void Free(nint pointer);

    private static string? RealPathNative(string path)
    {
        nint result = RealPath(path, 0);
        if (result == 0) return null;
        try
        {
            return Marshal.PtrToStringUTF8(result);
        }
        finally
        {
            Free(result);
        }
    }
}
