using Streaming.Core.Decode;

namespace Streaming.Core.Ingest;

/// <summary>
/// Sizes a source's headers may declare, checked before anything is allocated from them, so that a hostile or
/// corrupt file is refused in one line naming the file and the limit instead of exhausting memory. The daemon sets
/// them from <c>limits.*</c>; the defaults fit any real data set.
/// </summary>
public sealed record SourceLimits
{
    public static readonly SourceLimits Default = new();

    private readonly int _maxClasses = 100_000;
    private readonly long _maxMemberBytes = 1L << 30;
    private readonly int _maxRowGroupRows = 1 << 20;
    private readonly long _maxImagePixels = ImageDecoder.DefaultMaxPixels;

    /// <summary>Labels must be below this (a label of 2,000,000,000 would otherwise size a per-class table).</summary>
    public int MaxClasses
    {
        get => _maxClasses;
        init => _maxClasses = value is >= 1 and <= 100_000_000 ? value : throw new StreamingException($"max classes {value:N0}: must be 1 to 100,000,000");
    }

    /// <summary>The largest tar member read (one image or label file).</summary>
    public long MaxMemberBytes
    {
        get => _maxMemberBytes;
        init => _maxMemberBytes = value is >= 1 and <= int.MaxValue ? value : throw new StreamingException($"max member bytes {value:N0}: must be 1 to {int.MaxValue:N0}");
    }

    /// <summary>The most rows a Parquet row group may declare (its arrays are sized from the footer).</summary>
    public int MaxRowGroupRows
    {
        get => _maxRowGroupRows;
        init => _maxRowGroupRows = value is >= 1 and <= 100_000_000 ? value : throw new StreamingException($"max row group rows {value:N0}: must be 1 to 100,000,000");
    }

    /// <summary>The most pixels an idx header may declare for one image.</summary>
    public long MaxImagePixels
    {
        get => _maxImagePixels;
        init => _maxImagePixels = value is >= 1 and <= ImageDecoder.MaxPixelsCeiling ? value
            : throw new StreamingException($"max pixels {value:N0}: must be 1 to {ImageDecoder.MaxPixelsCeiling:N0}");
    }
}
