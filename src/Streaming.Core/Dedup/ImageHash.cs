using System.Buffers;
using System.Buffers.Binary;
using System.Numerics;
using System.Security.Cryptography;
using Streaming.Core.Decode;

namespace Streaming.Core.Dedup;

/// <summary>A 256-bit difference hash: 16 rows of 16 bits.</summary>
public readonly record struct DHash256(ulong A, ulong B, ulong C, ulong D)
{
    /// <summary>Hamming distance (0 to 256).</summary>
    public static int Distance(in DHash256 x, in DHash256 y) =>
        BitOperations.PopCount(x.A ^ y.A) + BitOperations.PopCount(x.B ^ y.B) + BitOperations.PopCount(x.C ^ y.C) + BitOperations.PopCount(x.D ^ y.D);
}

/// <summary>
/// An image's luma averaged over the dHash's 17 x 16 cells, each rounded to a byte: a thumbnail of 272 bytes that checks
/// a dHash's candidates (two pictures whose hashes are close but whose cells differ are look-alikes, not copies).
/// </summary>
[System.Runtime.CompilerServices.InlineArray(ImageHash.GridWidth * ImageHash.GridHeight)]
public struct LumaCells
{
    private byte _first;

    /// <summary>The RMS of the difference of two thumbnails, in levels of 255 (0 for equal cells).</summary>
    public static double Rms(in LumaCells a, in LumaCells b)
    {
        ReadOnlySpan<byte> x = a, y = b;
        var acc = Vector<int>.Zero;
        int k = 0;
        for (; k <= x.Length - Vector<byte>.Count; k += Vector<byte>.Count)
        {
            Vector.Widen(new Vector<byte>(x[k..]), out var x0, out var x1);
            Vector.Widen(new Vector<byte>(y[k..]), out var y0, out var y1);
            var d0 = Vector.AsVectorInt16(x0) - Vector.AsVectorInt16(y0);
            var d1 = Vector.AsVectorInt16(x1) - Vector.AsVectorInt16(y1);
            Vector.Widen(d0, out var e0, out var e1);
            Vector.Widen(d1, out var e2, out var e3);
            acc += e0 * e0 + e1 * e1 + e2 * e2 + e3 * e3;
        }
        long sum = Vector.Sum(acc);
        for (; k < x.Length; k++)
        {
            int d = x[k] - y[k];
            sum += d * d;
        }
        return Math.Sqrt((double)sum / x.Length);
    }
}

/// <summary>
/// An image's fingerprints for dedup: the SHA-256 of its encoded bytes, the SHA-256 of its decoded pixels (with its
/// size and pixel format: the same picture saved by another encoder matches), a 256-bit difference hash (dHash) of
/// its luma for near-duplicates (resized, recompressed, slightly edited), and the luma of the dHash's cells, which
/// checks the hash's candidates.
/// </summary>
public readonly record struct ImageHash(UInt128 BytesSha, UInt128 PixelsSha, DHash256 DHash, LumaCells Cells)
{
    /// <summary>Columns and rows of the dHash grid: 17 x 16 cells give 16 x 16 = 256 bits.</summary>
    public const int GridWidth = 17, GridHeight = 16, Bits = (GridWidth - 1) * GridHeight;

    /// <summary>Hamming distance between two difference hashes (0 to 256).</summary>
    public static int Distance(in DHash256 a, in DHash256 b) => DHash256.Distance(a, b);

    /// <summary>Fingerprints one encoded image (SHA-256s kept to their first 128 bits: collisions stay out of reach).</summary>
    public static ImageHash Of(ReadOnlySpan<byte> encoded)
    {
        var bytes = BytesOnly(encoded);
        var (pixels, (dhash, cells)) = ImageDecoder.WithPixels(encoded, 0, static (p, w, h, gray, _) => (PixelsDigest(p, w, h, gray), Perceptual(p, w, h, gray)));
        return new ImageHash(bytes, pixels, dhash, cells);
    }

    /// <summary>The first 128 bits of the SHA-256 of the bytes alone (for an image that does not decode).</summary>
    public static UInt128 BytesOnly(ReadOnlySpan<byte> encoded)
    {
        Span<byte> sha = stackalloc byte[32];
        SHA256.HashData(encoded, sha);
        return BinaryPrimitives.ReadUInt128BigEndian(sha);
    }

    private static UInt128 PixelsDigest(ReadOnlySpan<byte> pixels, int width, int height, bool gray)
    {
        // The size and format, then the pixels, hashed in one call (no hasher object an image).
        byte[] buffer = ArrayPool<byte>.Shared.Rent(pixels.Length + 9);
        try
        {
            BinaryPrimitives.WriteInt32LittleEndian(buffer, width);
            BinaryPrimitives.WriteInt32LittleEndian(buffer.AsSpan(4), height);
            buffer[8] = gray ? (byte)1 : (byte)4;
            pixels.CopyTo(buffer.AsSpan(9));
            Span<byte> digest = stackalloc byte[32];
            SHA256.HashData(buffer.AsSpan(0, pixels.Length + 9), digest);
            return BinaryPrimitives.ReadUInt128BigEndian(digest);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>A cell counts as brighter than its right neighbour only by more than this many levels (of 255).</summary>
    public const float Margin = 2f;

    /// <summary>
    /// The dHash of Krawetz (2013), on a 17 x 16 grid: luma averaged over each cell, then one bit per horizontally
    /// adjacent pair of cells, set when the left one is brighter. Robust to scaling, compression and small changes of
    /// brightness. 256 bits rather than the usual 64: on small images with few shapes (Fashion-MNIST's 28 x 28 icons)
    /// a 64-bit hash cannot tell two pairs of trousers apart. "Brighter" means by more than <see cref="Margin"/> levels:
    /// on images with flat backgrounds, cells that are equal would otherwise flip their bits at the least compression
    /// noise.
    /// </summary>
    internal static DHash256 DifferenceHash(ReadOnlySpan<byte> pixels, int width, int height, bool gray) => Perceptual(pixels, width, height, gray).Hash;

    /// <summary>The <see cref="DifferenceHash"/> and the cells' luma it is computed from (<see cref="LumaCells"/>).</summary>
    internal static (DHash256 Hash, LumaCells Cells) Perceptual(ReadOnlySpan<byte> pixels, int width, int height, bool gray)
    {
        Span<float> cells = stackalloc float[GridWidth * GridHeight];
        for (int cy = 0; cy < GridHeight; cy++)
        {
            int y0 = cy * height / GridHeight, y1 = Math.Max(y0 + 1, (cy + 1) * height / GridHeight);
            for (int cx = 0; cx < GridWidth; cx++)
            {
                int x0 = cx * width / GridWidth, x1 = Math.Max(x0 + 1, (cx + 1) * width / GridWidth);
                float sum = 0;
                for (int y = y0; y < y1; y++)
                {
                    if (gray)
                    {
                        var row = pixels.Slice(y * width + x0, x1 - x0);
                        foreach (byte v in row) sum += v;
                    }
                    else
                    {
                        for (int x = x0; x < x1; x++)
                        {
                            int i = (y * width + x) * 4;
                            sum += pixels[i] * 0.299f + pixels[i + 1] * 0.587f + pixels[i + 2] * 0.114f;
                        }
                    }
                }
                cells[cy * GridWidth + cx] = sum / ((y1 - y0) * (x1 - x0));
            }
        }
        Span<ulong> words = stackalloc ulong[4];
        for (int cy = 0, bit = 0; cy < GridHeight; cy++)
            for (int cx = 0; cx < GridWidth - 1; cx++, bit++)
                if (cells[cy * GridWidth + cx] > cells[cy * GridWidth + cx + 1] + Margin) words[bit >> 6] |= 1UL << (bit & 63);
        var luma = new LumaCells();
        for (int k = 0; k < cells.Length; k++) luma[k] = (byte)Math.Clamp(MathF.Round(cells[k]), 0, 255);
        return (new DHash256(words[0], words[1], words[2], words[3]), luma);
    }
}
