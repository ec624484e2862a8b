using SkiaSharp;

namespace Streaming.Core.Decode;

/// <summary>
/// Many crops of one encoded image. Each crop is the same, byte for byte, as
/// <see cref="ImageDecoder.DecodeToTensor"/> with that region gives, but the image is decoded once per decode
/// size (the codec's k/8 scales that the crops call for) instead of once per crop. Not thread-safe.
/// </summary>
public sealed class ImageCropper : IDisposable
{
    private readonly SKData _data;
    private readonly SKCodec _codec;
    private readonly long _maxPixels;
    private readonly Dictionary<(int Width, int Height, SKColorType Color, SKAlphaType Alpha), byte[]> _decoded = new();
    private bool _disposed;

    public ImageCropper(ReadOnlySpan<byte> encoded, long maxPixels = ImageDecoder.DefaultMaxPixels)
    {
        if (encoded.IsEmpty) throw new InvalidDataException("empty image");
        _data = SKData.CreateCopy(encoded);
        _codec = SKCodec.Create(_data) ?? throw DisposeAnd(new InvalidDataException("not a recognized image format"));
        _maxPixels = maxPixels;
    }

    public int Width => _codec.Info.Width;
    public int Height => _codec.Info.Height;

    /// <summary>Bytes held by decoded images (one per decode size used so far).</summary>
    public long DecodedBytes => _decoded.Values.Sum(b => (long)b.Length);

    /// <summary>Crops <paramref name="region"/>, stretched to the target, into <paramref name="destination"/> (CHW floats).</summary>
    public unsafe void CropToTensor(PreprocessOptions options, CropRegion region, Span<float> destination)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ImageDecoder.ThrowIfTooSmall(destination, options);
        var plan = ImageDecoder.Plan(new ManagedCodec(_codec), options, _maxPixels, region);
        var info = plan.DecodeInfo;
        var key = (info.Width, info.Height, info.ColorType, info.AlphaType);
        if (!_decoded.TryGetValue(key, out var pixels))
        {
            pixels = new byte[info.BytesSize];
            fixed (byte* p = pixels) ImageDecoder.ThrowUnlessDecoded(_codec.GetPixels(info, (IntPtr)p));
            _decoded[key] = pixels;
        }
        fixed (byte* src = pixels) ImageDecoder.ResizeToTensor((IntPtr)src, plan, options, destination);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _codec.Dispose();
        _data.Dispose();
        _decoded.Clear();
    }

    private Exception DisposeAnd(Exception e)
    {
        _data.Dispose();
        return e;
    }
}
