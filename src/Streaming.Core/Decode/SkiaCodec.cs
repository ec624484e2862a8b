using System.Runtime.InteropServices;
using SkiaSharp;

namespace Streaming.Core.Decode;

/// <summary>
/// Skia's codec through SkiaSharp's own native library, without SkiaSharp's managed wrappers: a struct of two native
/// handles. The wrappers cost some 220 bytes of managed objects an image (the SKData and SKCodec objects, their handle
/// registrations and release closures), more than the rest of scoring together; the native calls are the ones
/// SkiaSharp makes. Decoding stays SkiaSharp's: same library, same codec, same pixels.
/// </summary>
/// <remarks>
/// The C structs and enums are SkiaSharp's (sk_types.h), whose layout has changed between major versions. So the
/// first use checks this path against SkiaSharp's managed one on a gray and a color image (info, scaled sizes and
/// decoded bytes); if anything differs or a symbol is missing, <see cref="Available"/> is false and callers use the
/// managed API. A test asserts it is available with the SkiaSharp the project pins.
/// </remarks>
internal struct SkiaCodec : ICodec, IDisposable
{
    private const string Library = "libSkiaSharp";
    private IntPtr _data, _codec;

    /// <summary>Whether this path decodes exactly as SkiaSharp's managed API does (checked once, on first use).</summary>
    public static bool Available => Check.Value;

    private static readonly Lazy<bool> Check = new(SelfCheck);

    /// <summary>Opens a codec over <paramref name="length"/> bytes at <paramref name="encoded"/> (not copied: they must outlive the codec); false if Skia recognizes no format.</summary>
    public static unsafe bool TryOpen(byte* encoded, int length, out SkiaCodec codec)
    {
        codec = default;
        codec._data = sk_data_new_with_proc(encoded, length, IntPtr.Zero, IntPtr.Zero);
        if (codec._data == IntPtr.Zero) return false;
        codec._codec = sk_codec_new_from_data(codec._data);
        if (codec._codec != IntPtr.Zero) return true;
        codec.Dispose();
        return false;
    }

    /// <summary>The image's size and color type as SkiaSharp reports them (only Gray8 and Rgba8888 are mapped; others read as Unknown).</summary>
    public readonly SKImageInfo Info
    {
        get
        {
            sk_codec_get_info(_codec, out var native);
            return new SKImageInfo(native.Width, native.Height, FromNative(native.ColorType), (SKAlphaType)native.AlphaType);
        }
    }

    public readonly SKSizeI GetScaledDimensions(float scale)
    {
        sk_codec_get_scaled_dimensions(_codec, scale, out var size);
        return size;
    }

    /// <summary>Decodes into <paramref name="pixels"/> (rows of <c>info.RowBytes</c>); only Gray8 and Rgba8888 targets.</summary>
    public readonly SKCodecResult GetPixels(SKImageInfo info, IntPtr pixels)
    {
        var native = new ImageInfoNative { Width = info.Width, Height = info.Height, ColorType = ToNative(info.ColorType), AlphaType = (int)info.AlphaType };
        // SkiaSharp's defaults: not zero-initialized, whole image, first frame, no prior frame.
        var options = new CodecOptionsNative { ZeroInitialized = (int)SKZeroInitialized.No, Subset = IntPtr.Zero, FrameIndex = 0, PriorFrame = -1 };
        return (SKCodecResult)sk_codec_get_pixels(_codec, ref native, pixels, info.RowBytes, ref options);
    }

    public void Dispose()
    {
        if (_codec != IntPtr.Zero) sk_codec_destroy(_codec);
        if (_data != IntPtr.Zero) sk_data_unref(_data);
        _codec = _data = IntPtr.Zero;
    }

    // sk_colortype_t: Rgba8888 has been 4 throughout; Gray8 moves as types are added before it (11 in SkiaSharp 2, 13
    // in 3.119), so SelfCheck reads it off a gray PNG. Both are checked there.
    private const int NativeRgba8888 = 4;
    private static int _nativeGray8 = -1;

    private static SKColorType FromNative(int colorType) =>
        colorType == _nativeGray8 ? SKColorType.Gray8 : colorType == NativeRgba8888 ? SKColorType.Rgba8888 : SKColorType.Unknown;

    private static int ToNative(SKColorType colorType) => colorType switch
    {
        SKColorType.Gray8 when _nativeGray8 >= 0 => _nativeGray8,
        SKColorType.Rgba8888 => NativeRgba8888,
        _ => throw new ArgumentException($"the native codec path decodes to Gray8 or Rgba8888, not {colorType}", nameof(colorType)),
    };

    private static bool SelfCheck()
    {
        try
        {
            return Same(SKColorType.Gray8) && Same(SKColorType.Rgba8888);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException or ArgumentException)
        {
            return false;
        }
    }

    /// <summary>Encodes a small image of that type as PNG, decodes it both ways (full and scaled), compares everything.</summary>
    private static unsafe bool Same(SKColorType colorType)
    {
        var alpha = colorType == SKColorType.Gray8 ? SKAlphaType.Opaque : SKAlphaType.Unpremul;
        using var bitmap = new SKBitmap(new SKImageInfo(13, 7, colorType, alpha));
        var span = bitmap.GetPixelSpan();
        for (int i = 0; i < span.Length; i++) span[i] = (byte)(i * 37 + 11);
        using var png = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        byte[] encoded = png.ToArray();
        fixed (byte* p = encoded)
        {
            using var managedData = SKData.Create((IntPtr)p, encoded.Length);
            using var managed = SKCodec.Create(managedData);
            if (managed is null || !TryOpen(p, encoded.Length, out var raw)) return false;
            using (raw)
            {
                var mi = managed.Info;
                if (colorType == SKColorType.Gray8)
                {
                    if (mi.ColorType != SKColorType.Gray8) return false;
                    sk_codec_get_info(raw._codec, out var native);
                    if (native.ColorType == NativeRgba8888) return false;
                    _nativeGray8 = native.ColorType;
                }
                var ri = raw.Info;
                // A color PNG reads as Skia's N32 (BGRA here), which this path reports as Unknown; Rgba8888's native
                // value is checked by the decoded bytes (its channels differ).
                var expected = mi.ColorType is SKColorType.Gray8 or SKColorType.Rgba8888 ? mi.ColorType : SKColorType.Unknown;
                if (mi.Width != ri.Width || mi.Height != ri.Height || ri.ColorType != expected) return false;
                if (managed.GetScaledDimensions(0.5f) != raw.GetScaledDimensions(0.5f)) return false;
                var target = new SKImageInfo(mi.Width, mi.Height, colorType, alpha);
                var a = new byte[target.BytesSize];
                var b = new byte[target.BytesSize];
                SKCodecResult ra, rb;
                fixed (byte* pa = a) ra = managed.GetPixels(target, (IntPtr)pa);
                fixed (byte* pb = b) rb = raw.GetPixels(target, (IntPtr)pb);
                return ra == SKCodecResult.Success && rb == ra && a.AsSpan().SequenceEqual(b);
            }
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct ImageInfoNative
    {
        public IntPtr ColorSpace;
        public int Width, Height, ColorType, AlphaType;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct CodecOptionsNative
    {
        public int ZeroInitialized;
        public IntPtr Subset;
        public int FrameIndex, PriorFrame;
    }

    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    private static extern unsafe IntPtr sk_data_new_with_proc(void* ptr, nint length, IntPtr proc, IntPtr context);

    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    private static extern void sk_data_unref(IntPtr data);

    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    private static extern IntPtr sk_codec_new_from_data(IntPtr data);

    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    private static extern void sk_codec_destroy(IntPtr codec);

    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    private static extern void sk_codec_get_info(IntPtr codec, out ImageInfoNative info);

    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    private static extern void sk_codec_get_scaled_dimensions(IntPtr codec, float scale, out SKSizeI size);

    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    private static extern int sk_codec_get_pixels(IntPtr codec, ref ImageInfoNative info, IntPtr pixels, nint rowBytes, ref CodecOptionsNative options);
}

/// <summary>What decoding needs of a codec, for <see cref="SkiaCodec"/> and SkiaSharp's <see cref="SKCodec"/> alike.</summary>
internal interface ICodec
{
    SKImageInfo Info { get; }
    SKSizeI GetScaledDimensions(float scale);
    SKCodecResult GetPixels(SKImageInfo info, IntPtr pixels);
}

/// <summary>SkiaSharp's managed codec as an <see cref="ICodec"/>.</summary>
internal readonly struct ManagedCodec(SKCodec codec) : ICodec
{
    public SKImageInfo Info => codec.Info;
    public SKSizeI GetScaledDimensions(float scale) => codec.GetScaledDimensions(scale);
    public SKCodecResult GetPixels(SKImageInfo info, IntPtr pixels) => codec.GetPixels(info, pixels);
}
