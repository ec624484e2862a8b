namespace Streaming.Core;

/// <summary>
/// A tiny, fast, seedable PRNG (SplitMix64) whose sequence is fixed forever, unlike System.Random's,
/// so shuffles and augmentations replay identically on every machine and .NET version.
/// </summary>
public struct SplitMix64
{
    private ulong _state;

    public SplitMix64(ulong seed) => _state = seed;

    public ulong NextUInt64()
    {
        _state += 0x9E3779B97F4A7C15UL;
        return StableHash.Mix(_state);
    }

    /// <summary>Uniform in [0, n) (Lemire's multiply-shift; the bias is below 2^-32 for n below 2^32).</summary>
    public int NextInt(int n)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        return (int)((NextUInt64() >> 32) * (ulong)n >> 32);
    }

    /// <summary>Uniform in [0, 1).</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));
}
