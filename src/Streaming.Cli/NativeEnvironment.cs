using System.Runtime.InteropServices;

namespace Streaming.Cli;

/// <summary>
/// Settings for native libraries that must be in the process environment before they load (through
/// <see cref="Streaming.Models.Compute.NativeSettings"/>, since .NET's own does not reach native code on Linux).
/// </summary>
internal static partial class NativeEnvironment
{
    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int MallOpt(int param, int value);

    private const int M_ARENA_MAX = -8;

    /// <summary>
    /// For a long-running process: glibc gives each thread that allocates its own malloc arena and keeps each
    /// arena's high-water mark. libtorch allocates from whichever pool thread runs inference, so over hours a
    /// daemon's native memory spreads over up to 8 arenas a core, each holding its peak. Two arenas keep the
    /// resident size flat (unless the user set MALLOC_ARENA_MAX).
    /// </summary>
    public static void LimitMallocArenas(int arenas = 2)
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("MALLOC_ARENA_MAX") is not null) return;
        try
        {
            MallOpt(M_ARENA_MAX, arenas);
        }
        catch (EntryPointNotFoundException)
        {
            // not glibc (musl has no arenas to limit)
        }
    }

    /// <summary>
    /// libtorch's OpenMP threads spin while they wait; with decode threads on the same few cores the
    /// spinning steals their time (inference can drop 10x). Passive waiting, unless the user chose otherwise.
    /// </summary>
    public static void PreferPassiveOpenMp()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") is not null) return;
        Streaming.Models.Compute.NativeSettings.Set("OMP_WAIT_POLICY", "PASSIVE", overwrite: false);
    }
}
