using Streaming.Core.Decode;

namespace Streaming.Core.Loading;

/// <summary>Which augmentations the training loader applies; validated when set.</summary>
public sealed record AugmentationOptions
{
    /// <summary>Random crop after zero-padding by this many pixels on each side (0 = off). For small images.</summary>
    public int CropPadding { get; init; }
    /// <summary>Flip horizontally with probability 1/2.</summary>
    public bool HorizontalFlip { get; init; }
    /// <summary>Random-resized-crop (scale 0.08-1, aspect 3/4-4/3, as torchvision's) instead of decoding the whole image. For large images.</summary>
    public bool RandomResizedCrop { get; init; }

    public static AugmentationOptions None { get; } = new();

    /// <summary>The usual recipe: pad-and-crop with flips for small images, random-resized-crop with flips for large ones.</summary>
    public static AugmentationOptions Default(int imageSize) => imageSize <= 64
        ? new AugmentationOptions { CropPadding = Math.Max(1, imageSize / 8), HorizontalFlip = true }
        : new AugmentationOptions { RandomResizedCrop = true, HorizontalFlip = true };
}

/// <summary>
/// Decodes one training image and applies its augmentations, with random numbers drawn from a
/// generator seeded by (seed, epoch, image id): the same sample in the same epoch gets the same
/// augmentation whatever thread or batch it lands in, which is what makes a resumed run exact.
/// </summary>
public static class Augmentation
{
    public static void DecodeAugmented(ReadOnlySpan<byte> encoded, PreprocessOptions preprocess, AugmentationOptions augment,
        ulong seed, long epoch, string id, Span<float> destination)
    {
        var rng = new SplitMix64(StableHash.Of(id, seed ^ StableHash.Mix((ulong)epoch)));
        if (augment.RandomResizedCrop)
        {
            var region = SampleResizedCrop(encoded, ref rng);
            ImageDecoder.DecodeToTensor(encoded, preprocess, destination, region: region);
        }
        else
        {
            ImageDecoder.DecodeToTensor(encoded, preprocess, destination);
        }
        int c = preprocess.Channels, h = preprocess.Height, w = preprocess.Width;
        if (augment.CropPadding > 0)
        {
            int pad = augment.CropPadding;
            int dy = rng.NextInt(2 * pad + 1) - pad, dx = rng.NextInt(2 * pad + 1) - pad;
            if (dx != 0 || dy != 0) Shift(destination, c, h, w, dy, dx, preprocess);
        }
        if (augment.HorizontalFlip && (rng.NextUInt64() & 1) == 1)
        {
            for (int ch = 0; ch < c; ch++)
                for (int y = 0; y < h; y++) destination.Slice((ch * h + y) * w, w).Reverse();
        }
    }

    /// <summary>Moves the image by (dy, dx), filling with the normalized value of a black pixel: a random crop of the zero-padded image.</summary>
    internal static void Shift(Span<float> t, int c, int h, int w, int dy, int dx, PreprocessOptions p)
    {
        for (int ch = 0; ch < c; ch++)
        {
            float fill = -p.Mean[ch] / p.Std[ch];
            var plane = t.Slice(ch * h * w, h * w);
            // Walk in the direction that never overwrites a source pixel before it is read.
            for (int yi = 0; yi < h; yi++)
            {
                int y = dy > 0 ? h - 1 - yi : yi;
                int sy = y - dy;
                for (int xi = 0; xi < w; xi++)
                {
                    int x = dx > 0 ? w - 1 - xi : xi;
                    int sx = x - dx;
                    plane[y * w + x] = sy >= 0 && sy < h && sx >= 0 && sx < w ? plane[sy * w + sx] : fill;
                }
            }
        }
    }

    private static CropRegion SampleResizedCrop(ReadOnlySpan<byte> encoded, ref SplitMix64 rng)
    {
        // torchvision's RandomResizedCrop in fractions of the image: up to 10 tries, else the whole image.
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double area = 0.08 + rng.NextDouble() * (1 - 0.08);
            double logRatio = Math.Log(3.0 / 4) + rng.NextDouble() * (Math.Log(4.0 / 3) - Math.Log(3.0 / 4));
            double ratio = Math.Exp(logRatio);
            double fw = Math.Sqrt(area * ratio), fh = Math.Sqrt(area / ratio);
            if (fw <= 1 && fh <= 1)
            {
                double fx = rng.NextDouble() * (1 - fw), fy = rng.NextDouble() * (1 - fh);
                return new CropRegion(fx, fy, fw, fh);
            }
        }
        return CropRegion.Whole;
    }
}
