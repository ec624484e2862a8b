namespace Streaming.Core.Ingest;

/// <summary>A snapshot of a running ingestion, reported about once a second.</summary>
public readonly record struct IngestProgress(long Read, long Written, long Duplicates, long Quarantined, TimeSpan Elapsed)
{
    public double ImagesPerSecond => Elapsed.TotalSeconds > 0 ? Read / Elapsed.TotalSeconds : 0;
}
