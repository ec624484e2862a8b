using System.Globalization;
using Streaming.Core.Decode;
using Streaming.Core.Shards;

namespace Streaming.Core.Datasets;

/// <summary>
/// Distractors for an unlabeled set: random square crops of photos (images of none of the classes), at the
/// dataset's size and channels. Mixed into U, they test what the paper's web-scale U is full of: images the
/// teacher should not pick for any class. Crop i is drawn from photo i mod n, with its side a uniform 10-50%
/// of the photo's shorter side at a uniform position, from a generator seeded by (seed, i): the same photos,
/// count and seed give the same images.
/// </summary>
public static class Distractors
{
    public const string IdPrefix = "distractor-";

    /// <summary>Whether an id is a distractor's (<see cref="IdPrefix"/>).</summary>
    public static bool IsDistractor(string id) => id.StartsWith(IdPrefix, StringComparison.Ordinal);

    public static async Task<DatasetManifest> CropAsync(string photos, int count, int size, int channels, ulong seed, string output,
        CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 4);
        if (channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels), "channels must be 1 or 3");
        if (!Directory.Exists(photos)) throw new StreamingException($"{photos}: no such folder of photos for distractors");
        var files = Directory.EnumerateFiles(photos).Where(ImageFiles.IsImagePath).Order(StringComparer.Ordinal).ToList();
        if (files.Count == 0) throw new StreamingException($"{photos}: has no images to crop distractors from");
        var preprocess = new PreprocessOptions(size, size, channels, ResizeMode.Stretch, Enumerable.Repeat(0f, channels).ToArray(), Enumerable.Repeat(1f, channels).ToArray());
        var tensor = new float[channels * size * size];
        var pixels = new byte[channels * size * size];
        var records = new ImageRecord?[count];
        // Photo by photo (its crops made together from its decoded pixels); written in crop order.
        for (int f = 0; f < files.Count && f < count; f++)
        {
            byte[] bytes = await File.ReadAllBytesAsync(files[f], cancellationToken).ConfigureAwait(false);
            var check = ImageDecoder.Check(bytes);
            if (!check.Ok) throw new StreamingException($"{files[f]}: does not decode ({check.Detail}); remove it from the distractor photos");
            string source = Path.GetFileName(files[f]);
            // Decoded once per decode size its crops need, not once per crop.
            using var cropper = new ImageCropper(bytes);
            for (int i = f; i < count; i += files.Count)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var rng = new SplitMix64(StableHash.Mix(seed ^ StableHash.Mix((ulong)i + 0x5EED)));
                double side = Math.Min(check.Width, check.Height) * (0.1 + 0.4 * rng.NextDouble());
                double fw = side / check.Width, fh = side / check.Height;
                var region = new CropRegion(rng.NextDouble() * (1 - fw), rng.NextDouble() * (1 - fh), fw, fh);
                cropper.CropToTensor(preprocess, region, tensor);
                // CHW floats in [0, 1] -> interleaved bytes.
                for (int c = 0; c < channels; c++)
                    for (int p = 0; p < size * size; p++)
                        pixels[p * channels + c] = (byte)Math.Clamp(Math.Round(tensor[c * size * size + p] * 255), 0, 255);
                byte[] png = PngEncoder.Encode(pixels, size, size, channels);
                records[i] = new ImageRecord(IdPrefix + i.ToString("D7", CultureInfo.InvariantCulture), png, null, source, "png", size, size, Hashing.Sha256(png));
            }
        }
        await using var writer = new DatasetWriter(output, new DatasetWriterOptions { Overwrite = true });
        foreach (var r in records) await writer.AddAsync(r!, cancellationToken).ConfigureAwait(false);
        var parameters = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["photos"] = string.Join(",", files.Select(Path.GetFileName)),
            ["count"] = count.ToString(CultureInfo.InvariantCulture),
            ["size"] = size.ToString(CultureInfo.InvariantCulture),
            ["channels"] = channels.ToString(CultureInfo.InvariantCulture),
            ["seed"] = seed.ToString(CultureInfo.InvariantCulture),
        };
        return await writer.CompleteAsync(new DatasetManifest { Origin = "distractors: random crops of photos", Parameters = parameters }, cancellationToken).ConfigureAwait(false);
    }
}
