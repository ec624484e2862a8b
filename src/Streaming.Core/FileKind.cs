using System.Runtime.InteropServices;

namespace Streaming.Core;

/// <summary>
/// Whether a path is a regular file, by stat(2): a named pipe, socket or device in a drop would block a reader forever
/// (a pipe without a writer) or never end (a device), so the inbox and the folder sources take regular files only.
/// </summary>
public static partial class FileKind
{
    private const uint TypeMask = 0xF000, Regular = 0x8000;

    /// <summary>True for a regular file (following links); false for anything else or a path that is gone. Everywhere but Linux: whether it exists as a file.</summary>
    public static bool IsRegularFile(string path)
    {
        if (!OperatingSystem.IsLinux()) return File.Exists(path);
        // struct stat as Linux lays it out: st_mode at byte 24 on x86-64, 16 on arm64 (and the other 64-bit generic ABIs).
        int modeOffset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 24 : 16;
        Span<byte> buffer = stackalloc byte[256];
        if (Stat(path, ref MemoryMarshal.GetReference(buffer)) != 0) return false;
        uint mode = BitConverter.ToUInt32(buffer[modeOffset..]);
        return (mode & TypeMask) == Regular;
    }

    [LibraryImport("libc", EntryPoint = "stat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Stat(string path, ref byte buffer);
}
