using System.Buffers.Binary;
using System.IO.Compression;

namespace Streaming.Tests;

/// <summary>An independent reader of gzipped idx files, to check ingestion against the original pixels.</summary>
internal static class IdxReader
{
    public static (byte[][] Images, byte[] Labels) Read(string imagesGz)
    {
        byte[] images = Gunzip(imagesGz);
        byte[] labels = Gunzip(imagesGz.Replace("images-idx3", "labels-idx1"));
        int n = BinaryPrimitives.ReadInt32BigEndian(images.AsSpan(4));
        int rows = BinaryPrimitives.ReadInt32BigEndian(images.AsSpan(8));
        int cols = BinaryPrimitives.ReadInt32BigEndian(images.AsSpan(12));
        var result = new byte[n][];
        for (int i = 0; i < n; i++) result[i] = images.AsSpan(16 + i * rows * cols, rows * cols).ToArray();
        return (result, labels[8..]);
    }

    private static byte[] Gunzip(string path)
    {
        using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        using var ms = new MemoryStream();
        gz.CopyTo(ms);
        return ms.ToArray();
    }
}
