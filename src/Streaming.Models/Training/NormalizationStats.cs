using Streaming.Core.Datasets;
using Streaming.Core.Decode;
using Streaming.Core.Shards;

namespace Streaming.Models.Training;

/// <summary>The normalization a new model's spec carries, measured on the data it trains on.</summary>
internal static class NormalizationStats
{
    /// <summary>Per-channel mean and std of the first (up to) 2,000 labeled images, at the model's input size.</summary>
    public static async Task<(float[] Mean, float[] Std)> MeanStdAsync(string data, DatasetManifest manifest, int channels, int size, CancellationToken ct)
    {
        var p = new PreprocessOptions(size, size, channels, size <= 64 ? ResizeMode.Stretch : ResizeMode.ShorterSideCenterCrop,
            Enumerable.Repeat(0f, channels).ToArray(), Enumerable.Repeat(1f, channels).ToArray());
        var buffer = new float[p.TensorLength];
        var sum = new double[channels];
        var sq = new double[channels];
        long n = 0;
        int plane = size * size;
        foreach (var shard in manifest.ShardPaths(data))
        {
            await foreach (var r in ImageShardReader.ReadAsync(shard, ct).ConfigureAwait(false))
            {
                if (r.Label is null) continue;
                ImageDecoder.DecodeToTensor(r.Image, p, buffer);
                for (int c = 0; c < channels; c++)
                    foreach (var v in buffer.AsSpan(c * plane, plane)) { sum[c] += v; sq[c] += (double)v * v; }
                n += plane;
                if (n >= 2000L * plane) break;
            }
            if (n >= 2000L * plane) break;
        }
        var mean = sum.Select(s => (float)(s / n)).ToArray();
        var std = sq.Select((s, c) => (float)Math.Max(1e-3, Math.Sqrt(Math.Max(0, s / n - (double)mean[c] * mean[c])))).ToArray();
        return (mean, std);
    }
}
