using Streaming.Core.Datasets;
using Streaming.Core.Decode;

namespace Streaming.Core.Ingest;

/// <summary>Settings of one ingestion run. Validated when set.</summary>
public sealed record IngestOptions
{
    private readonly int _workers = Math.Max(1, Environment.ProcessorCount);
    private readonly long _maxPixels = ImageDecoder.DefaultMaxPixels;

    /// <summary>Where the shards go; <see cref="DatasetWriterOptions.Tags"/> forces a tags column (a source with tags gets one anyway).</summary>
    public DatasetWriterOptions Writer { get; init; } = new();

    /// <summary>Decode every image with SkiaSharp and quarantine those that fail. On by default.</summary>
    public bool Verify { get; init; } = true;

    /// <summary>Parallel workers that encode, verify and hash.</summary>
    public int Workers
    {
        get => _workers;
        init => _workers = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(Workers), "workers must be at least 1");
    }

    /// <summary>Images whose header declares more pixels than this are quarantined as oversized.</summary>
    public long MaxPixels
    {
        get => _maxPixels;
        init => _maxPixels = value is >= 1 and <= ImageDecoder.MaxPixelsCeiling ? value
            : throw new StreamingException($"max pixels {value:N0}: must be 1 to {ImageDecoder.MaxPixelsCeiling:N0} (an RGBA image of more pixels overflows the decoder's 32-bit sizes)");
    }

    /// <summary>Put before every image id (the daemon uses the drop's name, so ids from different drops never collide).</summary>
    public string IdPrefix { get; init; } = "";

    /// <summary>Dataset name in the manifest; the output folder's name when empty.</summary>
    public string Name { get; init; } = "";
}
