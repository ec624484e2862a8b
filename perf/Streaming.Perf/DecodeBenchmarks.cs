using BenchmarkDotNet.Attributes;
using Streaming.Core.Decode;

namespace Streaming.Perf;

/// <summary>
/// Decode + resize to 224x224 (shorter side, center crop, RGB, normalized CHW floats) of each real
/// photo in data-samples/photos, and decode of 28x28 PNGs. Compare with perf/python/pil_decode_bench.py.
/// </summary>
[MemoryDiagnoser]
public class DecodeBenchmarks
{
    private byte[] _photo = [];
    private byte[][] _pngs = [];
    private readonly float[] _tensor224 = new float[3 * 224 * 224];
    private readonly float[] _tensor28 = new float[28 * 28];
    private static readonly PreprocessOptions To224 = new(224, 224, 3);
    private static readonly PreprocessOptions To224NoScaledDecode = new(224, 224, 3, scaledDecode: false);
    private static readonly PreprocessOptions To28Gray = new(28, 28, 1, ResizeMode.Stretch);

    public static IEnumerable<string> Photos() =>
        Directory.EnumerateFiles(Path.Combine(RepoPaths.Samples, "photos")).Select(Path.GetFileName).Order(StringComparer.Ordinal)!;

    [ParamsSource(nameof(Photos))]
    public string Photo { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        _photo = File.ReadAllBytes(Path.Combine(RepoPaths.Samples, "photos", Photo));
        _pngs = Directory.EnumerateFiles(Path.Combine(RepoPaths.Samples, "fashion-mnist-folder"), "*.png", SearchOption.AllDirectories)
            .Order(StringComparer.Ordinal).Take(100).Select(File.ReadAllBytes).ToArray();
    }

    [Benchmark(Description = "decode+resize 224 (scaled decode)")]
    public void Decode224() => ImageDecoder.DecodeToTensor(_photo, To224, _tensor224);

    [Benchmark(Description = "decode+resize 224 (full decode)")]
    public void Decode224Full() => ImageDecoder.DecodeToTensor(_photo, To224NoScaledDecode, _tensor224);

    [Benchmark(Description = "28x28 PNG decode x100", OperationsPerInvoke = 100)]
    public void DecodePng28()
    {
        foreach (var png in _pngs) ImageDecoder.DecodeToTensor(png, To28Gray, _tensor28);
    }
}
