using System.Buffers.Binary;
using System.Numerics;
using System.Security.Cryptography;
using Streaming.Core.Decode;

namespace Streaming.Core.Dedup;

/// <summary>
/// An image's fingerprints for dedup: the SHA-256 of its encoded bytes, the SHA-256 of its decoded pixels (with its
/// size and pixel format: the same picture saved as PNG and as BMP matches), and a 64-bit difference hash (dHash) of
/// its luma for near-duplicates (resized, recompressed, slightly edited).
/// </summary>
public readonly record struct ImageHash(UInt128 BytesSha, UInt128 PixelsSha, ulong DHash)
{
    /// <summary>Hamming distance between two difference hashes (0 to 64).</summary>
    public static int Distance(ulong a, ulong b) => BitOperations.PopCount(a ^ b);

    /// <summary>Fingerprints one encoded image (SHA-256s kept to their first 128 bits: collisions stay out of reach).</summary>
    public static ImageHash Of(ReadOnlySpan<byte> encoded)
    {
        Span<byte> sha = stackalloc byte[32];
        SHA256.HashData(encoded, sha);
        var bytes = BinaryPrimitives.ReadUInt128BigEndian(sha);
        var (pixels, dhash) = ImageDecoder.WithPixels(encoded, 0, static (p, w, h, gray, _) => (PixelsDigest(p, w, h, gray), DifferenceHash(p, w, h, gray)));
        return new ImageHash(bytes, pixels, dhash);
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
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> header = stackalloc byte[9];
        BinaryPrimitives.WriteInt32LittleEndian(header, width);
        BinaryPrimitives.WriteInt32LittleEndian(header[4..], height);
        header[8] = gray ? (byte)1 : (byte)4;
        sha.AppendData(header);
        sha.AppendData(pixels);
        Span<byte> digest = stackalloc byte[32];
        sha.GetHashAndReset(digest);
        return BinaryPrimitives.ReadUInt128BigEndian(digest);
    }

    /// <summary>
    /// The dHash of Krawetz (2013): luma averaged over a 9 x 8 grid of cells, then one bit per horizontally adjacent pair
    /// of cells, set when the left one is brighter. Robust to scaling, compression and small changes of brightness.
    /// Here "brighter" means by more than <see cref="Margin"/> levels: on images with flat backgrounds (Fashion-MNIST's
    /// black), cells that are equal would otherwise flip their bits at the least compression noise.
    /// </summary>
    public const float Margin = 2f;

    internal static ulong DifferenceHash(ReadOnlySpan<byte> pixels, int width, int height, bool gray)
    {
        Span<float> cells = stackalloc float[72];
        for (int cy = 0; cy < 8; cy++)
        {
            int y0 = cy * height / 8, y1 = Math.Max(y0 + 1, (cy + 1) * height / 8);
            for (int cx = 0; cx < 9; cx++)
            {
                int x0 = cx * width / 9, x1 = Math.Max(x0 + 1, (cx + 1) * width / 9);
                float sum = 0;
                for (int y = y0; y < y1 && y < height; y++)
                    for (int x = x0; x < x1 && x < width; x++)
                    {
                        if (gray) sum += pixels[y * width + x];
                        else
                        {
                            int i = (y * width + x) * 4;
                            sum += pixels[i] * 0.299f + pixels[i + 1] * 0.587f + pixels[i + 2] * 0.114f;
                        }
                    }
                cells[cy * 9 + cx] = sum / ((y1 - y0) * (x1 - x0));
            }
        }
        ulong hash = 0;
        for (int cy = 0, bit = 0; cy < 8; cy++)
            for (int cx = 0; cx < 8; cx++, bit++)
                if (cells[cy * 9 + cx] > cells[cy * 9 + cx + 1] + Margin) hash |= 1UL << bit;
        return hash;
    }
}
