using System.Buffers;
using System.Runtime.InteropServices;
using SkiaSharp;

namespace Streaming.Core.Decode;

/// <summary>
/// Decoding and preprocessing of encoded images with SkiaSharp. Thread-safe and stateless: every
/// call decodes into pooled buffers and writes into the caller's span, with no per-pixel allocation.
/// </summary>
public static class ImageDecoder
{
    /// <summary>The default ceiling on declared dimensions: a header claiming more is refused before any pixel is decoded.</summary>
    public const long DefaultMaxPixels = 100_000_000;

    /// <summary>The highest ceiling there can be: an RGBA image of more pixels overflows SkiaSharp's 32-bit byte sizes.</summary>
    public const long MaxPixelsCeiling = int.MaxValue / 4;

    /// <summary>
    /// Reads the header and decodes the image (at the codec's smallest scale, which still reads
    /// the whole stream), reporting empty, unknown, oversized, truncated or corrupt input.
    /// </summary>
    public static unsafe ImageCheck Check(ReadOnlySpan<byte> encoded, long maxPixels = DefaultMaxPixels)
    {
        if (encoded.IsEmpty) return ImageCheck.Bad(QuarantineReasons.Empty, "0 bytes");
        fixed (byte* p = encoded)
        {
            using var data = SKData.Create((IntPtr)p, encoded.Length);
            using var codec = SKCodec.Create(data);
            if (codec is null)
            {
                string? signature = SignatureFormat(encoded);
                return signature is null
                    ? ImageCheck.Bad(QuarantineReasons.NotAnImage, "not a recognized image format")
                    : ImageCheck.Bad(QuarantineReasons.Corrupt, $"{signature} signature, but the header is truncated or corrupt", signature);
            }
            var info = codec.Info;
            string format = FormatName(codec.EncodedFormat);
            if (info.Width <= 0 || info.Height <= 0) return ImageCheck.Bad(QuarantineReasons.Corrupt, $"invalid dimensions {info.Width}x{info.Height}", format);
            if ((long)info.Width * info.Height > Math.Min(maxPixels, MaxPixelsCeiling))
                return ImageCheck.Bad(QuarantineReasons.Oversized, $"declared dimensions {info.Width}x{info.Height} exceed the limit of {maxPixels:N0} pixels", format, info.Width, info.Height);

            // The smallest supported scale still consumes the whole entropy-coded stream, so truncation is caught cheaply.
            var scaled = codec.GetScaledDimensions(1f / 8);
            // Decode to the source's own layout where Skia has one (gray stays gray): the cheapest full decode.
            var decodeInfo = info.ColorType == SKColorType.Gray8
                ? new SKImageInfo(scaled.Width, scaled.Height, SKColorType.Gray8, SKAlphaType.Opaque)
                : new SKImageInfo(scaled.Width, scaled.Height, SKColorType.Rgba8888, SKAlphaType.Premul);
            var result = DecodeInto(new ManagedCodec(codec), decodeInfo, out var pixels);
            // The pixels are not needed, but the pinned rental must go back (an undisposed one stays pinned for good).
            pixels.Dispose();
            return result switch
            {
                SKCodecResult.Success => new ImageCheck(true, format, info.Width, info.Height, null, null),
                SKCodecResult.IncompleteInput => ImageCheck.Bad(QuarantineReasons.Truncated, "image data ends early", format, info.Width, info.Height),
                SKCodecResult.ErrorInInput => ImageCheck.Bad(QuarantineReasons.Corrupt, "corrupt image data", format, info.Width, info.Height),
                _ => ImageCheck.Bad(QuarantineReasons.Unreadable, $"decoder says {result}", format, info.Width, info.Height),
            };
        }
    }

    /// <summary>1 when the image is stored as grayscale, 3 otherwise (header only).</summary>
    public static unsafe int NativeChannels(ReadOnlySpan<byte> encoded)
    {
        fixed (byte* p = encoded)
        {
            using var data = SKData.Create((IntPtr)p, encoded.Length);
            using var codec = SKCodec.Create(data) ?? throw new InvalidDataException("not a recognized image format");
            return codec.Info.ColorType == SKColorType.Gray8 ? 1 : 3;
        }
    }

    /// <summary>
    /// Decodes, resizes and normalizes one image into <paramref name="destination"/> (CHW floats).
    /// Throws <see cref="InvalidDataException"/> for input that does not decode.
    /// </summary>
    /// <remarks>With <paramref name="region"/> set, only that part of the image is taken and stretched to the target (random-resized-crop); the resize mode is then ignored.</remarks>
    public static unsafe void DecodeToTensor(ReadOnlySpan<byte> encoded, PreprocessOptions options, Span<float> destination, long maxPixels = DefaultMaxPixels, CropRegion? region = null)
    {
        ThrowIfTooSmall(destination, options);
        if (encoded.IsEmpty) throw new InvalidDataException("empty image");
        fixed (byte* p = encoded)
        {
            if (SkiaCodec.Available)
            {
                // The same codec without SkiaSharp's managed wrappers: no managed object an image.
                if (!SkiaCodec.TryOpen(p, encoded.Length, out var raw)) throw new InvalidDataException("not a recognized image format");
                using (raw) DecodeToTensor(raw, options, destination, maxPixels, region);
                return;
            }
            using var data = SKData.Create((IntPtr)p, encoded.Length);
            using var codec = SKCodec.Create(data) ?? throw new InvalidDataException("not a recognized image format");
            DecodeToTensor(new ManagedCodec(codec), options, destination, maxPixels, region);
        }
    }

    /// <summary>What <see cref="WithPixels{TState, TResult}"/> hands its callback: an image's decoded pixels, Gray8 or RGBA8888 (unpremultiplied), rows packed.</summary>
    public delegate TResult PixelsCallback<TState, TResult>(ReadOnlySpan<byte> pixels, int width, int height, bool gray, TState state);

    /// <summary>
    /// Decodes one image at its own size, as 8-bit gray when it is stored gray and RGBA otherwise, and passes the pixels
    /// to <paramref name="use"/> (they live only during the call). Throws <see cref="InvalidDataException"/> for input that
    /// does not decode.
    /// </summary>
    public static unsafe TResult WithPixels<TState, TResult>(ReadOnlySpan<byte> encoded, TState state, PixelsCallback<TState, TResult> use, long maxPixels = DefaultMaxPixels)
    {
        if (encoded.IsEmpty) throw new InvalidDataException("empty image");
        fixed (byte* p = encoded)
        {
            if (SkiaCodec.Available)
            {
                if (!SkiaCodec.TryOpen(p, encoded.Length, out var raw)) throw new InvalidDataException("not a recognized image format");
                using (raw) return WithPixels(raw, state, use, maxPixels);
            }
            using var data = SKData.Create((IntPtr)p, encoded.Length);
            using var codec = SKCodec.Create(data) ?? throw new InvalidDataException("not a recognized image format");
            return WithPixels(new ManagedCodec(codec), state, use, maxPixels);
        }
    }

    private static unsafe TResult WithPixels<TCodec, TState, TResult>(in TCodec codec, TState state, PixelsCallback<TState, TResult> use, long maxPixels)
        where TCodec : struct, ICodec
    {
        var info = codec.Info;
        if ((long)info.Width * info.Height > Math.Min(maxPixels, MaxPixelsCeiling))
            throw new InvalidDataException($"declared dimensions {info.Width}x{info.Height} exceed the limit of {maxPixels:N0} pixels");
        bool gray = info.ColorType == SKColorType.Gray8;
        var target = new SKImageInfo(info.Width, info.Height, gray ? SKColorType.Gray8 : SKColorType.Rgba8888, gray ? SKAlphaType.Opaque : SKAlphaType.Unpremul);
        var result = DecodeInto(codec, target, out var decoded);
        try
        {
            ThrowUnlessDecoded(result);
            return use(new ReadOnlySpan<byte>((void*)decoded.Pointer, target.BytesSize), target.Width, target.Height, gray, state);
        }
        finally
        {
            decoded.Dispose();
        }
    }

    private static void DecodeToTensor<TCodec>(in TCodec codec, PreprocessOptions options, Span<float> destination, long maxPixels, CropRegion? region)
        where TCodec : struct, ICodec
    {
        var plan = Plan(codec, options, maxPixels, region);
        var result = DecodeInto(codec, plan.DecodeInfo, out var decoded);
        try
        {
            ThrowUnlessDecoded(result);
            ResizeToTensor(decoded.Pointer, plan, options, destination);
        }
        finally
        {
            decoded.Dispose();
        }
    }

    internal static void ThrowIfTooSmall(Span<float> destination, PreprocessOptions options)
    {
        if (destination.Length < options.TensorLength)
            throw new ArgumentException($"destination holds {destination.Length} floats, {options.TensorLength} needed", nameof(destination));
    }

    /// <summary>Resizes the plan's part of decoded pixels (at plan.DecodeInfo) to the target and normalizes it into <paramref name="destination"/> (CHW floats).</summary>
    internal static unsafe void ResizeToTensor(IntPtr decoded, DecodePlan plan, PreprocessOptions options, Span<float> destination)
    {
        var info = plan.DecodeInfo;
        if (info.Width == options.Width && info.Height == options.Height && plan.Fraction == CropRegion.Whole)
        {
            // Already the target size, whole: the decoded pixels are the resized ones (rows packed: RowBytes is the
            // minimum), so they are normalized where they are, with no copy and no pixmap objects (the common case
            // of a dataset stored at the model's size, Fashion-MNIST's 28x28 for one).
            Normalize(new ReadOnlySpan<byte>((void*)decoded, info.BytesSize), plan.Gray, options, destination);
            return;
        }
        byte[] resized = ArrayPool<byte>.Shared.Rent(options.Width * options.Height * 4);
        try
        {
            fixed (byte* dst = resized) ResizeInto(decoded, plan, options, (IntPtr)dst);
            Normalize(resized, plan.Gray, options, destination);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(resized);
        }
    }

    /// <summary>How one image is decoded for a target: its pixel format, the (possibly codec-scaled) size to decode at, and the part of it that maps onto the target.</summary>
    internal readonly record struct DecodePlan(bool Gray, SKImageInfo DecodeInfo, CropRegion Fraction, ResizeMode Mode);

    internal static DecodePlan Plan<TCodec>(in TCodec codec, PreprocessOptions options, long maxPixels, CropRegion? crop) where TCodec : struct, ICodec
    {
        var info = codec.Info;
        if ((long)info.Width * info.Height > Math.Min(maxPixels, MaxPixelsCeiling))
            throw new InvalidDataException($"declared dimensions {info.Width}x{info.Height} exceed the limit of {maxPixels:N0} pixels");

        bool gray = options.Channels == 1 && info.ColorType == SKColorType.Gray8;
        var colorType = gray ? SKColorType.Gray8 : SKColorType.Rgba8888;
        var alphaType = gray ? SKAlphaType.Opaque : SKAlphaType.Unpremul;

        // The part of the source that maps onto the target: a given crop, the center crop, or the whole image.
        var fraction = crop ?? CropRegion.Whole;
        if (!(fraction.Width > 0 && fraction.Height > 0 && fraction.X >= 0 && fraction.Y >= 0 && fraction.X + fraction.Width <= 1.000001 && fraction.Y + fraction.Height <= 1.000001))
            throw new ArgumentOutOfRangeException(nameof(crop), $"crop region {fraction} is not inside the image");
        var mode = crop is null ? options.Mode : ResizeMode.Stretch;
        double srcW = info.Width * fraction.Width, srcH = info.Height * fraction.Height;

        // Let the codec shrink first (JPEG DCT scaling) while the decoded image still covers the target.
        var size = new SKSizeI(info.Width, info.Height);
        if (options.ScaledDecode)
        {
            // The shrink the target needs (for a center crop as for a stretch: the larger of the two axes').
            double need = Math.Max(options.Width / srcW, options.Height / srcH);
            // JPEG decodes at k/8 scales: take the smallest whose image still covers the target.
            for (int k = 1; k < 8 && need < 0.5; k++)
            {
                var candidate = codec.GetScaledDimensions(k / 8f);
                if (candidate.Width >= Math.Ceiling(info.Width * need) && candidate.Height >= Math.Ceiling(info.Height * need))
                {
                    if (candidate.Width < size.Width) size = candidate;
                    break;
                }
            }
        }
        return new DecodePlan(gray, new SKImageInfo(size.Width, size.Height, colorType, alphaType), fraction, mode);
    }

    internal static void ThrowUnlessDecoded(SKCodecResult result)
    {
        if (result != SKCodecResult.Success)
            throw new InvalidDataException(result == SKCodecResult.IncompleteInput ? "truncated: image data ends early" : $"image does not decode ({result})");
    }

    /// <summary>Takes the plan's part of decoded pixels (at plan.DecodeInfo) and resizes it into <paramref name="destination"/> (Width*Height*4 bytes).</summary>
    private static void ResizeInto(IntPtr decoded, DecodePlan plan, PreprocessOptions options, IntPtr destination)
    {
        var decodeInfo = plan.DecodeInfo;
        var size = new SKSizeI(decodeInfo.Width, decodeInfo.Height);
        var fraction = plan.Fraction;
        using var source = new SKPixmap(decodeInfo, decoded, decodeInfo.RowBytes);
        // The crop in decoded pixels (the decode may be scaled down from the original).
        int rx = (int)Math.Round(fraction.X * size.Width), ry = (int)Math.Round(fraction.Y * size.Height);
        int rw = Math.Clamp((int)Math.Round(fraction.Width * size.Width), 1, size.Width - rx);
        int rh = Math.Clamp((int)Math.Round(fraction.Height * size.Height), 1, size.Height - ry);
        SKRectI region = new(rx, ry, rx + rw, ry + rh);
        if (plan.Mode == ResizeMode.ShorterSideCenterCrop)
        {
            double s = Math.Max((double)options.Width / rw, (double)options.Height / rh);
            int cw = Math.Clamp((int)Math.Round(options.Width / s), 1, rw);
            int ch = Math.Clamp((int)Math.Round(options.Height / s), 1, rh);
            int x = rx + (rw - cw) / 2, y = ry + (rh - ch) / 2;
            region = new SKRectI(x, y, x + cw, y + ch);
        }
        var targetInfo = new SKImageInfo(options.Width, options.Height, decodeInfo.ColorType, decodeInfo.AlphaType);
        using var target = new SKPixmap(targetInfo, destination, targetInfo.RowBytes);
        if (region.Width == options.Width && region.Height == options.Height && region.Left == 0 && region.Top == 0 && size.Width == options.Width)
        {
            source.ReadPixels(target);
        }
        else
        {
            using var cropped = source.ExtractSubset(region) ?? throw new InvalidDataException("crop region outside the image");
            var sampling = new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.None);
            if (!cropped.ScalePixels(target, sampling)) throw new InvalidDataException("resize failed");
        }
    }

    private static void Normalize(ReadOnlySpan<byte> pixels, bool gray, PreprocessOptions options, Span<float> destination)
    {
        int plane = options.Width * options.Height;
        if (options.Channels == 1)
        {
            float m = options.Mean[0], inv = 1f / (255f * options.Std[0]), bias = m / options.Std[0];
            var dst = destination[..plane];
            if (gray)
            {
                for (int i = 0; i < plane; i++) dst[i] = pixels[i] * inv - bias;
            }
            else
            {
                // ITU-R 601 luma, as PIL's convert("L") computes it.
                for (int i = 0, j = 0; i < plane; i++, j += 4)
                    dst[i] = (pixels[j] * 0.299f + pixels[j + 1] * 0.587f + pixels[j + 2] * 0.114f) * inv - bias;
            }
            return;
        }
        for (int c = 0; c < 3; c++)
        {
            float inv = 1f / (255f * options.Std[c]), bias = options.Mean[c] / options.Std[c];
            var dst = destination.Slice(c * plane, plane);
            if (gray)
            {
                for (int i = 0; i < plane; i++) dst[i] = pixels[i] * inv - bias;
            }
            else
            {
                for (int i = 0, j = c; i < plane; i++, j += 4) dst[i] = pixels[j] * inv - bias;
            }
        }
    }

    /// <summary>Decodes with the codec into a pooled buffer that the caller disposes.</summary>
    private static SKCodecResult DecodeInto<TCodec>(in TCodec codec, SKImageInfo info, out PooledPixels pixels) where TCodec : struct, ICodec
    {
        pixels = new PooledPixels(info.BytesSize);
        return codec.GetPixels(info, pixels.Pointer);
    }

    /// <summary>The format a file claims by its first bytes, for telling a corrupt image from a non-image.</summary>
    private static string? SignatureFormat(ReadOnlySpan<byte> b)
    {
        if (b.Length >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return "jpeg";
        if (b.Length >= 8 && b[..8].SequenceEqual(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A })) return "png";
        if (b.Length >= 6 && (b[..6].SequenceEqual("GIF87a"u8) || b[..6].SequenceEqual("GIF89a"u8))) return "gif";
        if (b.Length >= 12 && b[..4].SequenceEqual("RIFF"u8) && b[8..12].SequenceEqual("WEBP"u8)) return "webp";
        return null;
    }

    private static string FormatName(SKEncodedImageFormat format) => format switch
    {
        SKEncodedImageFormat.Jpeg => "jpeg",
        SKEncodedImageFormat.Png => "png",
        SKEncodedImageFormat.Webp => "webp",
        SKEncodedImageFormat.Gif => "gif",
        SKEncodedImageFormat.Bmp => "bmp",
        SKEncodedImageFormat.Ico => "ico",
        SKEncodedImageFormat.Wbmp => "wbmp",
        SKEncodedImageFormat.Heif => "heif",
        SKEncodedImageFormat.Avif => "avif",
        SKEncodedImageFormat.Dng => "dng",
        _ => format.ToString().ToLowerInvariant(),
    };

    /// <summary>A pinned rental from the shared pool, returned on dispose.</summary>
    private struct PooledPixels : IDisposable
    {
        private byte[]? _array;
        private GCHandle _handle;

        public PooledPixels(int length)
        {
            _array = ArrayPool<byte>.Shared.Rent(Math.Max(length, 1));
            _handle = GCHandle.Alloc(_array, GCHandleType.Pinned);
        }

        public readonly IntPtr Pointer => _handle.AddrOfPinnedObject();

        public void Dispose()
        {
            if (_array is null) return;
            _handle.Free();
            ArrayPool<byte>.Shared.Return(_array);
            _array = null;
        }
    }
}
