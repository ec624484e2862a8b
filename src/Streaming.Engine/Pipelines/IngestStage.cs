using Streaming.Core.Datasets;
using Streaming.Core.Ingest;

namespace Streaming.Engine.Pipelines;

/// <summary>A labeled source (idx, folder, tar, Parquet) ingested into image shards, keyed by its path and its content's hash.</summary>
internal sealed class IngestStage(string name, Func<PipelineSpec, string> source, string dataset) : PipelineStage(name, [])
{
    public override IReadOnlyList<PipelineStage> Inputs(PipelineSpec spec) => [];

    internal override SortedDictionary<string, object> Parameters(KeyContext key) =>
        KeyContext.Of(("source", source(key.Spec)), ("source_sha256", key.SourceSha256(source(key.Spec))));

    internal override IReadOnlyList<StageOutput> Outputs(PipelineSpec spec) => [StageOutput.Shards()];

    internal override async Task<MetricValues> RunAsync(StageRun run, string folder)
    {
        await IngestAsync(run, source(run.Spec), dataset, folder);
        return new MetricValues();
    }

    /// <summary>Ingests <paramref name="source"/> into <paramref name="dir"/> as the dataset <paramref name="name"/>, its ids prefixed.</summary>
    public static async Task IngestAsync(StageRun run, string source, string name, string dir, string idPrefix = "")
    {
        var src = ImageSource.Open(source);
        // Ingested shards do not depend on the worker count (IngestTests), so it is not part of the stage's key.
        var options = new IngestOptions
        {
            Workers = run.Spec.IngestWorkers, Name = name, IdPrefix = idPrefix, Writer = new DatasetWriterOptions { Overwrite = true },
        };
        await Ingestor.RunAsync(src, dir, options, run.Reporter<IngestProgress>((running, p) => running(null,
            p.Elapsed.TotalSeconds > 0 ? p.Read / p.Elapsed.TotalSeconds : null, null, p.Read, idPrefix.Length > 0 ? "the unlabeled collection" : null)),
            run.CancellationToken);
    }
}
