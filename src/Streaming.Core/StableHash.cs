using System.Text;

namespace Streaming.Core;

/// <summary>
/// Hashes whose values never change between .NET versions or machines (unlike string.GetHashCode),
/// so that anything derived from them (splits, shuffles) is reproducible everywhere.
/// </summary>
public static class StableHash
{
    /// <summary>FNV-1a over the UTF-8 bytes of <paramref name="text"/>, finished with SplitMix64 and mixed with a seed.</summary>
    public static ulong Of(string text, ulong seed) => Of(text.AsSpan(), seed);

    /// <summary>The same hash as <see cref="Of(string, ulong)"/>, of characters that need not be a string.</summary>
    public static ulong Of(ReadOnlySpan<char> text, ulong seed)
    {
        ulong h = 14695981039346656037UL;
        int i = 0;
        // ASCII is its own UTF-8: hash the characters directly, with no encoding step (the common case for ids).
        for (; i < text.Length && text[i] < 0x80; i++) { h ^= text[i]; h *= 1099511628211UL; }
        if (i < text.Length)
        {
            var rest = text[i..];
            Span<byte> buffer = stackalloc byte[256];
            int max = Encoding.UTF8.GetMaxByteCount(rest.Length);
            byte[]? rented = null;
            Span<byte> bytes = max <= buffer.Length ? buffer : (rented = System.Buffers.ArrayPool<byte>.Shared.Rent(max));
            try
            {
                int n = Encoding.UTF8.GetBytes(rest, bytes);
                foreach (byte b in bytes[..n]) { h ^= b; h *= 1099511628211UL; }
            }
            finally
            {
                if (rented is not null) System.Buffers.ArrayPool<byte>.Shared.Return(rented);
            }
        }
        return Mix(h ^ Mix(seed + 0x9E3779B97F4A7C15UL));
    }

    /// <summary>The SplitMix64 finalizer: a bijective avalanche of 64 bits.</summary>
    public static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
