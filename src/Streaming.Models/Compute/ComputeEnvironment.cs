using System.Text.Json.Serialization;
using Streaming.Core;
using Streaming.Models.Zoo;
using TorchSharp;

namespace Streaming.Models.Compute;

/// <summary>
/// Which kernels computed a result: the CPU and its flags, the kernel ISA that was asked for and the one each library
/// used, the libtorch version, threads and memory layout. Written into run.json, scoring.json, a training run's
/// config.json and the daemon's state, because a model's bits depend on all of them (docs/cpu-kernels.md).
/// </summary>
public sealed record ComputeEnvironment
{
    /// <summary>The ISA that was asked for: native, or a pinned level (<see cref="KernelIsas.Names"/>).</summary>
    [JsonPropertyName("isa")] public string Isa { get; init; } = "native";
    /// <summary>The highest ISA oneDNN (convolutions) used: the pinned level, or the CPU's best.</summary>
    [JsonPropertyName("onednn_isa")] public string OnednnIsa { get; init; } = "";
    /// <summary>ATen's vectorized kernels (softmax, batch norm, reductions): avx2, avx512, ...</summary>
    [JsonPropertyName("aten_cpu_capability")] public string AtenCpuCapability { get; init; } = "";
    /// <summary>MKL's reproducibility mode (matrix products): off (MKL's own choice of path, the default), or the MKL_CBWR setting.</summary>
    [JsonPropertyName("mkl_cbwr")] public string MklCbwr { get; init; } = "off";
    [JsonPropertyName("mkl")] public string? Mkl { get; init; }
    [JsonPropertyName("cpu")] public string Cpu { get; init; } = "";
    [JsonPropertyName("cpu_vendor")] public string CpuVendor { get; init; } = "";
    [JsonPropertyName("cpu_flags")] public IReadOnlyList<string> CpuFlags { get; init; } = [];
    [JsonPropertyName("cpu_caches")] public string CpuCaches { get; init; } = "";
    [JsonPropertyName("libtorch")] public string Libtorch { get; init; } = "";
    [JsonPropertyName("torchsharp")] public string TorchSharp { get; init; } = "";
    [JsonPropertyName("backend")] public string Backend { get; init; } = "";
    [JsonPropertyName("threads")] public int Threads { get; init; }
    [JsonPropertyName("channels_last")] public bool ChannelsLast { get; init; }

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

    /// <summary>What differs between two records in ways that change a model's bits (empty when none does).</summary>
    public IReadOnlyList<string> KernelDifferences(ComputeEnvironment other)
    {
        var d = new List<string>();
        if (OnednnIsa != other.OnednnIsa) d.Add($"oneDNN ISA {OnednnIsa} / {other.OnednnIsa}");
        if (AtenCpuCapability != other.AtenCpuCapability) d.Add($"ATen kernels {AtenCpuCapability} / {other.AtenCpuCapability}");
        if (MklCbwr != other.MklCbwr) d.Add($"MKL path {MklCbwr} / {other.MklCbwr}");
        if (Libtorch != other.Libtorch) d.Add($"libtorch {Libtorch} / {other.Libtorch}");
        if (Threads != other.Threads) d.Add($"threads {Threads} / {other.Threads}");
        if (ChannelsLast != other.ChannelsLast) d.Add($"channels-last {ChannelsLast} / {other.ChannelsLast}");
        return d;
    }

    /// <summary>
    /// What a cached result computed with libtorch depends on, besides its own parameters and threads: the kernels,
    /// the libtorch version, the layout and the zoo's revision. A stage cache keyed on it is never reused across them.
    /// </summary>
    [JsonIgnore]
    public string KernelKey => $"onednn {OnednnIsa}, aten {AtenCpuCapability}, mkl {MklCbwr}, libtorch {Libtorch} {Backend}, channels-last {(ChannelsLast ? "on" : "off")}, zoo {ModelZoo.Revision}";

    /// <summary>One line for logs.</summary>
    public override string ToString() =>
        $"{Cpu}: isa {Isa} (oneDNN {OnednnIsa}, ATen {AtenCpuCapability}, MKL {MklCbwr}), libtorch {Libtorch} {Backend}, {Threads} threads, channels-last {(ChannelsLast ? "on" : "off")}";
}
