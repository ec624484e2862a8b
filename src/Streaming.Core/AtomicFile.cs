using System.Runtime.InteropServices;
using System.Text;

namespace Streaming.Core;

/// <summary>
/// The one way a file or folder is committed: written under a temporary name next to its place, fsynced, renamed
/// into place, and its directory fsynced, so that after a crash or a power loss it is either whole and durable or
/// absent, never empty or half written (rename alone orders nothing on disk: the new name can reach the disk before
/// the data). Temporary names end in <see cref="TempSuffix"/>, which readers and recovery ignore and clean up.
/// </summary>
public static partial class AtomicFile
{
    /// <summary>What every temporary file or folder's name ends in.</summary>
    public const string TempSuffix = ".partial";

    /// <summary>The temporary name used for <paramref name="path"/>.</summary>
    public static string TempFor(string path) => path + TempSuffix;

    /// <summary>
    /// A temporary name for <paramref name="path"/> that no other writer uses: for files that several processes may
    /// commit at once (two cluster workers scoring the same shard, one of them stale; the bytes are the same).
    /// </summary>
    public static string UniqueTempFor(string path) =>
        $"{path}.{Environment.ProcessId:x}-{System.Security.Cryptography.RandomNumberGenerator.GetHexString(8, lowercase: true)}{TempSuffix}";

    /// <summary>Writes a file through <paramref name="write"/> and commits it.</summary>
    public static async Task WriteAsync(string path, Func<Stream, Task> write, CancellationToken cancellationToken = default)
    {
        string temp = TempFor(path);
        try
        {
            await using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous))
            {
                await write(stream).ConfigureAwait(false);
                await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
                stream.Flush(flushToDisk: true);
            }
            Rename(temp, path);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>Writes a file through <paramref name="write"/> and commits it.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        string temp = TempFor(path);
        try
        {
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            Rename(temp, path);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    public static void WriteAllText(string path, string text) => Write(path, s => s.Write(Encoding.UTF8.GetBytes(text)));

    public static Task WriteAllTextAsync(string path, string text, CancellationToken cancellationToken = default) =>
        WriteAsync(path, s => s.WriteAsync(Encoding.UTF8.GetBytes(text), cancellationToken).AsTask(), cancellationToken);

    /// <summary>Commits a temporary file its writer has closed: fsync it, rename it to <paramref name="path"/>, fsync the directory.</summary>
    public static void Commit(string temp, string path)
    {
        SyncFile(temp);
        Rename(temp, path);
    }

    /// <summary>
    /// Commits a temporary folder its writer has finished: every file in it (recursively) and every folder fsynced, then
    /// the folder renamed to <paramref name="path"/> (which must not exist), then the parent fsynced.
    /// </summary>
    public static void CommitDirectory(string temp, string path)
    {
        foreach (var file in Directory.EnumerateFiles(temp, "*", SearchOption.AllDirectories)) SyncFile(file);
        foreach (var dir in Directory.EnumerateDirectories(temp, "*", SearchOption.AllDirectories)) SyncDirectory(dir);
        SyncDirectory(temp);
        Directory.Move(temp, path);
        SyncDirectory(Parent(path));
    }

    /// <summary>rename(2) of a file or symbolic link over <paramref name="to"/> (atomic), then an fsync of the directory.</summary>
    public static void Rename(string from, string to)
    {
        if (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS())
        {
            if (RenameSys(from, to) != 0) throw new IOException($"rename {from} -> {to} failed (errno {Marshal.GetLastPInvokeError()})");
        }
        else
        {
            File.Move(from, to, overwrite: true);
        }
        SyncDirectory(Parent(to));
    }

    /// <summary>fsync(2) of a file's data and size.</summary>
    public static void SyncFile(string path)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);
        if (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS())
        {
            if (FSync((int)handle.DangerousGetHandle()) != 0) throw new IOException($"fsync {path} failed (errno {Marshal.GetLastPInvokeError()})");
        }
        else
        {
            using var stream = new FileStream(handle, FileAccess.ReadWrite);
            stream.Flush(flushToDisk: true);
        }
    }

    /// <summary>fsync(2) of a directory, which makes the names created, renamed or removed in it durable (Linux and macOS; nothing elsewhere).</summary>
    public static void SyncDirectory(string path)
    {
        if (!(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS())) return;
        int fd = Open(path, OpenReadOnly | (OperatingSystem.IsLinux() ? LinuxDirectory | LinuxCloseOnExec : 0));
        if (fd < 0) throw new IOException($"open {path} to fsync it failed (errno {Marshal.GetLastPInvokeError()})");
        try
        {
            if (FSync(fd) != 0) throw new IOException($"fsync {path} failed (errno {Marshal.GetLastPInvokeError()})");
        }
        finally
        {
            Close(fd);
        }
    }

    /// <summary>Deletes what a write cut short left behind, ignoring a file that is already gone.</summary>
    public static void TryDelete(string temp)
    {
        try
        {
            if (File.Exists(temp)) File.Delete(temp);
            else if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static string Parent(string path) => Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".";

    private const int OpenReadOnly = 0, LinuxDirectory = 0x10000, LinuxCloseOnExec = 0x80000;

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int FSync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "rename", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int RenameSys(string from, string to);
}
