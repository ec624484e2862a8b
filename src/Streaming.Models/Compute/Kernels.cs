using Streaming.Core;
using Streaming.Core.Compute;
using Streaming.Core.Options;
using Streaming.Models.Zoo;
using TorchSharp;

namespace Streaming.Models.Compute;

/// <summary>
/// The kernels libtorch uses in this process: pinning them (<see cref="PinIsa"/>, <see cref="PinLike"/>), the one place
/// compute settings are made (<see cref="Configure"/>, <see cref="UseThreads"/>), and the record of what is in use
/// (<see cref="Current"/>), which run records, scoring.json and training configs carry.
/// </summary>
public static class Kernels
{
    private static readonly Lock Gate = new();
    private static Pin? s_pin;

    /// <summary>The settings one pin applies (null: native, nothing set).</summary>
    private sealed record Pin(string Requested, KernelIsa Onednn, string Aten, string? MklBranch);

    /// <summary>
    /// Fixes the kernels libtorch may use, for the rest of the process: oneDNN's highest ISA (<c>ONEDNN_MAX_CPU_ISA</c>),
    /// ATen's vectorized kernels (<c>ATEN_CPU_CAPABILITY</c>) and MKL's code path (<c>MKL_CBWR</c>, see
    /// <see cref="KernelIsas.MklBranch"/>). Each library reads
    /// its setting once, on first use, so this must run before the first tensor operation; it checks that ATen took the
    /// setting and says so in one line when it could not. <see cref="KernelIsa.Native"/> sets nothing.
    /// </summary>
    /// <exception cref="StreamingException">This CPU lacks the ISA, or libtorch has already chosen its kernels.</exception>
    public static void PinIsa(KernelIsa isa, string what = "--isa")
    {
        if (isa == KernelIsa.Native) return;
        var cpu = CpuInfo.Current;
        if (!KernelIsas.Supports(cpu.Flags, isa))
            throw new StreamingException($"{what} {isa.Name()}: this CPU ({cpu.Model}) has at most {cpu.BestIsa.Name()}");
        Apply(new Pin(isa.Name(), isa, isa.AtenCapability(), isa.MklBranch()), what);
    }

    /// <summary>
    /// The one place the process's compute settings are made: the kernel ISA (see <see cref="PinIsa"/>), the memory
    /// layout, and libtorch's intra-op threads (0 or null: all cores). Every verb, the daemon and the pipeline runner come
    /// through here; the trainer and the scorer call <see cref="UseThreads"/> for the thread count a run records.
    /// </summary>
    public static void Configure(KernelIsa isa, int? threads, bool channelsLast = true, string what = "--isa")
    {
        PinIsa(isa, what);
        MemoryFormat.ChannelsLast = channelsLast;
        UseThreads(threads);
    }

    /// <summary>Sets libtorch's intra-op threads (0 or null: all cores) and returns the count: the only call of torch.set_num_threads.</summary>
    public static int UseThreads(int? threads)
    {
        int n = Knobs.ResolveThreads(threads);
        if (torch.get_num_threads() != n) torch.set_num_threads(n);
        return n;
    }

    /// <summary>
    /// Pins the kernels a record names (a replay): oneDNN's ISA and ATen's kernels as they were used, and MKL's path
    /// as it was set. Returns null when this CPU can run them, or the one line that says why not.
    /// </summary>
    public static string? PinLike(ComputeEnvironment recorded, string what)
    {
        if (!KernelIsas.TryParse(recorded.OnednnIsa, out var onednn) || onednn == KernelIsa.Native)
            return $"{what}: names an unknown kernel ISA '{recorded.OnednnIsa}'";
        var cpu = CpuInfo.Current;
        if (!KernelIsas.Supports(cpu.Flags, onednn))
            return $"{what}: ran on {onednn.Name()} kernels ({recorded.Cpu}), and this CPU ({cpu.Model}) has at most {cpu.BestIsa.Name()}";
        if (recorded.AtenCpuCapability is not ("avx2" or "avx512"))
            return $"{what}: names ATen kernels '{recorded.AtenCpuCapability}', which cannot be pinned";
        Apply(new Pin(recorded.Isa, onednn, recorded.AtenCpuCapability, recorded.MklCbwr is "off" or "auto" ? null : recorded.MklCbwr), what);
        return null;
    }

    private static void Apply(Pin pin, string what)
    {
        lock (Gate)
        {
            if (s_pin is not null && s_pin != pin)
                throw new StreamingException($"{what} {pin.Requested}: this process already pinned {s_pin.Requested} kernels, and libtorch keeps its first choice");
            NativeSettings.Set("ONEDNN_MAX_CPU_ISA", pin.Onednn.OnednnName());
            NativeSettings.Set("ATEN_CPU_CAPABILITY", pin.Aten);
            if (pin.MklBranch is string branch) NativeSettings.Set("MKL_CBWR", branch);
            string? aten = NativeSettings.AtenCpuCapability();
            if (aten is not null && aten != pin.Aten)
                throw new StreamingException($"{what} {pin.Requested}: libtorch already chose {aten} kernels in this process; the ISA must be set before the first tensor operation");
            s_pin = pin;
        }
    }

    /// <summary>The kernels this process uses now, for a record. Call it after libtorch has been used (or it will be, here).</summary>
    public static ComputeEnvironment Current(int? threads = null)
    {
        var cpu = CpuInfo.Current;
        Pin? pin;
        lock (Gate) pin = s_pin;
        KernelIsa onednn = pin?.Onednn ?? Cap(cpu.BestIsa, Environment.GetEnvironmentVariable("ONEDNN_MAX_CPU_ISA") ?? Environment.GetEnvironmentVariable("DNNL_MAX_CPU_ISA"));
        string cbwr = Environment.GetEnvironmentVariable("MKL_CBWR") is { Length: > 0 } c ? c : "off";
        return new ComputeEnvironment
        {
            Isa = pin?.Requested ?? "native",
            OnednnIsa = onednn.Name(),
            AtenCpuCapability = NativeSettings.AtenCpuCapability() ?? "unknown",
            MklCbwr = cbwr,
            Mkl = NativeSettings.MklVersion(),
            Cpu = cpu.Family.Length > 0 ? $"{cpu.Model} ({cpu.Family})" : cpu.Model,
            CpuVendor = cpu.Vendor,
            CpuFlags = cpu.RelevantFlags,
            CpuCaches = cpu.Caches,
            Libtorch = torch.__version__,
            TorchSharp = typeof(torch).Assembly.GetName().Version?.ToString() ?? "",
            Backend = TorchDevice.Backend,
            Threads = threads ?? torch.get_num_threads(),
            ChannelsLast = MemoryFormat.ChannelsLast,
        };
    }

    /// <summary>The CPU's best level, lowered to a user's own <c>ONEDNN_MAX_CPU_ISA</c> when one is set.</summary>
    private static KernelIsa Cap(KernelIsa best, string? env) =>
        env is { Length: > 0 } && !string.Equals(env, "ALL", StringComparison.OrdinalIgnoreCase) && KernelIsas.TryParse(env, out var cap) && cap < best ? cap : best;

    /// <summary>
    /// What a cached result computed with libtorch depends on, besides its own parameters and threads: the kernels,
    /// the libtorch version, the layout and the zoo's revision. A stage cache keyed on it is never reused across them.
    /// </summary>
    public static string KernelKey(ComputeEnvironment e) =>
        $"onednn {e.OnednnIsa}, aten {e.AtenCpuCapability}, mkl {e.MklCbwr}, libtorch {e.Libtorch} {e.Backend}, channels-last {(e.ChannelsLast ? "on" : "off")}, zoo {ModelZoo.Revision}";

}
