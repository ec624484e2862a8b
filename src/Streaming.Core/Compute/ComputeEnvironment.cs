using System.Text.Json.Serialization;

using Streaming.Core.Compute;

namespace Streaming.Core.Compute;

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

    /// <summary>One line for logs.</summary>
    public override string ToString() =>
        $"{Cpu}: isa {Isa} (oneDNN {OnednnIsa}, ATen {AtenCpuCapability}, MKL {MklCbwr}), libtorch {Libtorch} {Backend}, {Threads} threads, channels-last {(ChannelsLast ? "on" : "off")}";
}
