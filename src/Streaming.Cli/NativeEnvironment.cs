using System.Runtime.InteropServices;

namespace Streaming.Cli;

/// <summary>
/// Settings for native libraries that must be in the process environment before they load. .NET's
/// Environment.SetEnvironmentVariable does not reach native code on Linux, so this calls setenv.
/// </summary>
internal static partial class NativeEnvironment
{
    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);

    /// <summary>
    /// libtorch's OpenMP threads spin while they wait; with decode threads on the same few cores the
    /// spinning steals their time (inference can drop 10x). Passive waiting, unless the user chose otherwise.
    /// </summary>
    public static void PreferPassiveOpenMp()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") is not null) return;
        SetEnv("OMP_WAIT_POLICY", "PASSIVE", 0);
        Environment.SetEnvironmentVariable("OMP_WAIT_POLICY", "PASSIVE");
    }
}
