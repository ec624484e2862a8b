using System.Runtime.InteropServices;
using System.Text;
using TorchSharp;

namespace Streaming.Models.Compute;

/// <summary>
/// What native code reads: the process environment as libc holds it (which .NET's <c>Environment.SetEnvironmentVariable</c>
/// does not reach on Linux), and the settings libtorch reports back about itself.
/// </summary>
public static partial class NativeSettings
{
    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);

    /// <summary>Sets a variable where both native libraries and .NET see it (on Linux; elsewhere for .NET only).</summary>
    public static void Set(string name, string value, bool overwrite = true)
    {
        if (!overwrite && Environment.GetEnvironmentVariable(name) is not null) return;
        if (OperatingSystem.IsLinux()) SetEnv(name, value, overwrite ? 1 : 0);
        Environment.SetEnvironmentVariable(name, value);
    }

    private static nint TorchCpu()
    {
        // Loading libtorch through TorchSharp first means the library is in the process; dlopen by its soname finds it.
        _ = torch.get_num_threads();
        if (NativeLibrary.TryLoad("libtorch_cpu.so", out var handle)) return handle;
        if (NativeLibrary.TryLoad(Path.Combine(AppContext.BaseDirectory, "libtorch_cpu.so"), out handle)) return handle;
        return 0;
    }

    /// <summary>
    /// ATen's choice of vectorized kernels (<c>at::get_cpu_capability()</c>: DEFAULT, AVX2, AVX512, ...), lower-case.
    /// ATen makes the choice on first use, from the CPU and <c>ATEN_CPU_CAPABILITY</c>, and keeps it for the process.
    /// </summary>
    public static unsafe string? AtenCpuCapability()
    {
        nint lib = TorchCpu();
        // std::string at::get_cpu_capability(): returned through a hidden pointer to the caller's 32-byte std::string.
        if (lib == 0 || !NativeLibrary.TryGetExport(lib, "_ZN2at18get_cpu_capabilityB5cxx11Ev", out var fn)) return null;
        byte* result = stackalloc byte[64];
        ((delegate* unmanaged<byte*, byte*>)fn)(result);
        byte* data = *(byte**)result;
        long length = *(long*)(result + 8);
        // The names are short, so they sit in the string's own 16-byte buffer and there is nothing to free.
        if (length is < 0 or > 15 || data != result + 16) return null;
        return Encoding.ASCII.GetString(data, (int)length).ToLowerInvariant();
    }

    /// <summary>The MKL inside libtorch, as it names itself (null when libtorch was built without MKL).</summary>
    public static unsafe string? MklVersion()
    {
        nint lib = TorchCpu();
        if (lib == 0 || !NativeLibrary.TryGetExport(lib, "MKL_Get_Version_String", out var fn)) return null;
        byte* buffer = stackalloc byte[256];
        ((delegate* unmanaged<byte*, int, void>)fn)(buffer, 256);
        string text = Encoding.ASCII.GetString(buffer, 256);
        int end = text.IndexOf('\0');
        return (end < 0 ? text : text[..end]).Trim();
    }
}
