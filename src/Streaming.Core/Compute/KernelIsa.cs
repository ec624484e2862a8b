namespace Streaming.Core.Compute;

/// <summary>
/// The CPU instruction set that libtorch's kernels may use: <c>native</c> (whatever the CPU has, the fast default) or a
/// oneDNN ISA level, from lowest to highest. Pinning a level fixes which kernels run, and with them the order in which
/// floats are summed, so that a run is bit-identical on any CPU that has that level (docs/cpu-kernels.md).
/// </summary>
public enum KernelIsa
{
    Native = 0,
    Avx2 = 1,
    Avx2Vnni = 2,
    Avx512Core = 3,
    Avx512CoreVnni = 4,
    Avx512CoreBf16 = 5,
    Avx512CoreFp16 = 6,
    Avx512CoreAmx = 7,
}

/// <summary>Names, CPU flags and library settings of each <see cref="KernelIsa"/>.</summary>
public static class KernelIsas
{
    private static readonly (KernelIsa Isa, string Name, string Onednn, string[] Flags)[] Levels =
    [
        (KernelIsa.Avx2, "avx2", "AVX2", ["avx2", "fma"]),
        (KernelIsa.Avx2Vnni, "avx2_vnni", "AVX2_VNNI", ["avx2", "fma", "avx_vnni"]),
        (KernelIsa.Avx512Core, "avx512_core", "AVX512_CORE", ["avx512f", "avx512bw", "avx512vl", "avx512dq"]),
        (KernelIsa.Avx512CoreVnni, "avx512_core_vnni", "AVX512_CORE_VNNI", ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni"]),
        (KernelIsa.Avx512CoreBf16, "avx512_core_bf16", "AVX512_CORE_BF16", ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx512_bf16"]),
        (KernelIsa.Avx512CoreFp16, "avx512_core_fp16", "AVX512_CORE_FP16", ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx512_bf16", "avx512_fp16"]),
        (KernelIsa.Avx512CoreAmx, "avx512_core_amx", "AVX512_CORE_AMX", ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16"]),
    ];

    /// <summary>Every name <see cref="Parse"/> takes, native first.</summary>
    public static IReadOnlyList<string> Names { get; } = ["native", .. Levels.Select(l => l.Name)];

    /// <summary>The CPU flags (as /proc/cpuinfo names them) that decide which level a CPU has.</summary>
    public static IReadOnlyList<string> RelevantFlags { get; } =
        ["avx", "avx2", "fma", "f16c", "avx_vnni", .. Levels.SelectMany(l => l.Flags).Distinct().Where(f => f.StartsWith("avx512", StringComparison.Ordinal) || f.StartsWith("amx", StringComparison.Ordinal))];

    public static string Name(this KernelIsa isa) => isa == KernelIsa.Native ? "native" : Levels.First(l => l.Isa == isa).Name;

    /// <summary>oneDNN's name of the level, as <c>ONEDNN_MAX_CPU_ISA</c> takes it.</summary>
    public static string OnednnName(this KernelIsa isa) => isa == KernelIsa.Native ? "ALL" : Levels.First(l => l.Isa == isa).Onednn;

    /// <summary>ATen's vectorized kernels for the level (<c>ATEN_CPU_CAPABILITY</c>): avx2 or avx512.</summary>
    public static string AtenCapability(this KernelIsa isa) => isa >= KernelIsa.Avx512Core ? "avx512" : "avx2";

    /// <summary>
    /// MKL's code path under a pin (<c>MKL_CBWR</c>): COMPATIBLE, whatever the level. MKL picks its fast paths by CPU
    /// vendor and model and can pin them only on Intel CPUs (on AMD, <c>MKL_CBWR=AVX2</c> falls back to its AUTO mode,
    /// which changes results too); COMPATIBLE is the one path MKL documents as giving the same results on any x86 CPU.
    /// It costs little here: the zoo's matrix products are its classifiers and 1x1 layers (perf/RESULTS.md).
    /// </summary>
    public static string MklBranch(this KernelIsa isa) => "COMPATIBLE";

    public static bool TryParse(string? text, out KernelIsa isa)
    {
        string t = (text ?? "").Trim().ToLowerInvariant().Replace('-', '_');
        if (t == "native")
        {
            isa = KernelIsa.Native;
            return true;
        }
        foreach (var l in Levels)
        {
            if (t == l.Name || t == l.Onednn.ToLowerInvariant())
            {
                isa = l.Isa;
                return true;
            }
        }
        isa = KernelIsa.Native;
        return false;
    }

    /// <summary>Parses a name (native, avx2, avx512_core, ...; oneDNN's upper-case names too), or throws naming the choices.</summary>
    public static KernelIsa Parse(string text, string what = "--isa") =>
        TryParse(text, out var isa) ? isa : throw new ArgumentException($"{what} {text}: not a kernel ISA (use one of {string.Join(", ", Names)})");

    /// <summary>The highest level whose flags are all in <paramref name="flags"/>; <see cref="KernelIsa.Native"/> when not even AVX2.</summary>
    public static KernelIsa Best(IReadOnlySet<string> flags)
    {
        var best = KernelIsa.Native;
        foreach (var l in Levels)
            if (l.Flags.All(flags.Contains)) best = l.Isa;
        return best;
    }

    /// <summary>Whether a CPU with <paramref name="flags"/> can run kernels of <paramref name="isa"/>.</summary>
    public static bool Supports(IReadOnlySet<string> flags, KernelIsa isa) =>
        isa == KernelIsa.Native || Levels.First(l => l.Isa == isa).Flags.All(flags.Contains);
}
