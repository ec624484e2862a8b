using System.Diagnostics;
using System.Security.Cryptography;
using Streaming.Core.Decode;

namespace Streaming.Perf;

/// <summary>Single-thread cost of each per-image ingest step on 28x28 Fashion-MNIST pixels.</summary>
internal static class StageBreakdown
{
    public static void Run()
    {
        var rng = new Random(1);
        var pngs = Directory.EnumerateFiles(Path.Combine(RepoPaths.Samples, "fashion-mnist-folder"), "*.png", SearchOption.AllDirectories)
            .Order(StringComparer.Ordinal).Select(File.ReadAllBytes).ToArray();
        // Raw pixels recovered from the sample PNGs, so the encoder sees real Fashion-MNIST content.
        var opts = new PreprocessOptions(28, 28, 1, ResizeMode.Stretch, [0f], [1f]);
        var raws = pngs.Select(p =>
        {
            var t = new float[784];
            ImageDecoder.DecodeToTensor(p, opts, t);
            return t.Select(v => (byte)Math.Round(v * 255)).ToArray();
        }).ToArray();
        var encoded = raws.Select(r => PngEncoder.Encode(r, 28, 28, 1)).ToArray();
        var tensor = new float[784];

        Time("PngEncoder.Encode 28x28 gray", raws.Length, i => PngEncoder.Encode(raws[i], 28, 28, 1));
        Time("ImageDecoder.Check 28x28 PNG", encoded.Length, i => ImageDecoder.Check(encoded[i]));
        Time("SHA-256 of the PNG", encoded.Length, i => SHA256.HashData(encoded[i]));
        Time("DecodeToTensor 28x28 PNG", encoded.Length, i => ImageDecoder.DecodeToTensor(encoded[i], opts, tensor));
    }

    private static void Time(string name, int n, Action<int> step)
    {
        for (int i = 0; i < n; i++) step(i); // warm-up
        var sw = Stopwatch.StartNew();
        long count = 0;
        while (sw.Elapsed < TimeSpan.FromSeconds(2))
        {
            for (int i = 0; i < n; i++) step(i);
            count += n;
        }
        double us = sw.Elapsed.TotalMicroseconds / count;
        Console.WriteLine($"{name,-34} {us,8:F2} us/image  {1e6 / us,10:N0} images/s");
    }
}
