using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;

namespace Streaming.Core.Decode;

/// <summary>
/// A minimal PNG encoder for 8-bit grayscale and RGB pixels (filter 0, zlib). Its output depends on
/// nothing but the pixels, so datasets built from raw pixels hash the same on every machine.
/// </summary>
public static class PngEncoder
{
    private static ReadOnlySpan<byte> Signature => [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>Encodes <paramref name="pixels"/> (row-major, <paramref name="channels"/> bytes a pixel: 1 gray, 3 RGB).</summary>
    public static byte[] Encode(ReadOnlySpan<byte> pixels, int width, int height, int channels)
    {
        if (channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels));
        if (pixels.Length != width * height * channels) throw new ArgumentException("pixel count does not match the dimensions");
        int stride = width * channels;
        int rawLength = (stride + 1) * height;
        byte[] raw = ArrayPool<byte>.Shared.Rent(rawLength);
        try
        {
            for (int y = 0; y < height; y++)
            {
                raw[y * (stride + 1)] = 0; // filter: none
                pixels.Slice(y * stride, stride).CopyTo(raw.AsSpan(y * (stride + 1) + 1, stride));
            }
            using var idat = new MemoryStream(rawLength / 2 + 64);
            using (var z = new ZLibStream(idat, CompressionLevel.Fastest, leaveOpen: true))
                z.Write(raw, 0, rawLength);

            int idatLength = (int)idat.Length;
            var png = new byte[8 + (12 + 13) + (12 + idatLength) + 12];
            var span = png.AsSpan();
            Signature.CopyTo(span);
            int at = 8;
            Span<byte> ihdr = stackalloc byte[13];
            BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
            BinaryPrimitives.WriteInt32BigEndian(ihdr[4..], height);
            ihdr[8] = 8;                                 // bit depth
            ihdr[9] = (byte)(channels == 1 ? 0 : 2);     // colour type: gray or truecolour
            ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0;    // compression, filter, interlace
            at = WriteChunk(span, at, "IHDR"u8, ihdr);
            at = WriteChunk(span, at, "IDAT"u8, idat.GetBuffer().AsSpan(0, idatLength));
            WriteChunk(span, at, "IEND"u8, ReadOnlySpan<byte>.Empty);
            return png;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(raw);
        }
    }

    private static int WriteChunk(Span<byte> png, int at, ReadOnlySpan<byte> type, ReadOnlySpan<byte> data)
    {
        BinaryPrimitives.WriteInt32BigEndian(png[at..], data.Length);
        type.CopyTo(png[(at + 4)..]);
        data.CopyTo(png[(at + 8)..]);
        uint crc = Crc32.Update(0, png.Slice(at + 4, 4 + data.Length));
        BinaryPrimitives.WriteUInt32BigEndian(png[(at + 8 + data.Length)..], crc);
        return at + 12 + data.Length;
    }
}
