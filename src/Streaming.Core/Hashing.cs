using System.Security.Cryptography;

namespace Streaming.Core;

public static class Hashing
{
    /// <summary>Lower-case hex SHA-256 of a file, streamed.</summary>
    public static string Sha256File(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>
    /// A source's hash: a file's SHA-256, or for a folder the SHA-256 of every file's relative path and SHA-256, in
    /// ordinal path order (so renaming, adding or changing any file changes it).
    /// </summary>
    public static string SourceSha256(string path)
    {
        if (File.Exists(path)) return Sha256File(path);
        if (!Directory.Exists(path)) throw new StreamingException($"{path}: no such file or folder");
        var lines = Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(path, f).Replace('\\', '/'))
            .Order(StringComparer.Ordinal)
            .Select(rel => rel + " " + Sha256File(Path.Combine(path, rel)));
        return Sha256(System.Text.Encoding.UTF8.GetBytes(string.Join("\n", lines)));
    }

    /// <summary>Lower-case hex SHA-256 of bytes.</summary>
    public static string Sha256(ReadOnlySpan<byte> data) => Convert.ToHexStringLower(SHA256.HashData(data));
}
