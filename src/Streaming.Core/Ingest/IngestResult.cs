using Streaming.Core.Datasets;

namespace Streaming.Core.Ingest;

/// <summary>What an ingestion run did.</summary>
public sealed record IngestResult(DatasetManifest Manifest, long Read, long Duplicates, long Ignored, TimeSpan Elapsed)
{
    public double ImagesPerSecond => Elapsed.TotalSeconds > 0 ? Read / Elapsed.TotalSeconds : 0;
}
