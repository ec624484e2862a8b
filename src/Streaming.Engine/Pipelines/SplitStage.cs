using Streaming.Core.Datasets;

namespace Streaming.Engine.Pipelines;

/// <summary>
/// Train split into D (labeled, a number a class) and U (the rest, its labels withheld), with the separate unlabeled
/// collection and random crops of photos (distractors) added to U when the manifest has them.
/// </summary>
internal sealed class SplitStage(string name, PipelineStage train)
    : PipelineStage(name, [PipelineMetrics.Labeled, PipelineMetrics.Unlabeled, PipelineMetrics.Distractors])
{
    /// <summary>The prefix of the ids of <c>data.unlabeled</c>'s images in U.</summary>
    public const string UnlabeledIdPrefix = "unlabeled/";

    public override IReadOnlyList<PipelineStage> Inputs(PipelineSpec spec) => [train];

    internal override SortedDictionary<string, object> Parameters(KeyContext key)
    {
        var parameters = KeyContext.Of(("labeled_per_class", key.Spec.LabeledPerClass), ("seed", key.Seed));
        // Only with a separate U or distractors: the keys of a plain split stay as they were, and so does its cache.
        if (key.Spec.Unlabeled is string unlabeled)
        {
            parameters["unlabeled_source"] = unlabeled;
            parameters["unlabeled_source_sha256"] = key.SourceSha256(unlabeled);
        }
        if (Distractors(key.Spec) is { } distractors)
        {
            parameters["distractors"] = distractors.Count;
            parameters["distractor_photos_sha256"] = key.SourceSha256(distractors.Photos);
        }
        return parameters;
    }

    internal override IReadOnlyList<StageOutput> Outputs(PipelineSpec spec) =>
        [StageOutput.Shards(PipelineGraph.LabeledFolder), StageOutput.Shards(PipelineGraph.UnlabeledFolder)];

    internal override async Task<MetricValues> RunAsync(StageRun run, string folder)
    {
        var spec = run.Spec;
        // labeled_per_class 0: all of train is D, and U is the separate collection alone (the paper's setting).
        int perClass = spec.LabeledPerClass is 0 ? DatasetSplitter.AllLabeled : spec.LabeledPerClass;
        var distractors = Distractors(spec);
        string? extra = null;
        if (spec.Unlabeled is string unlabeled)
        {
            extra = Path.Combine(folder, "unlabeled-source.tmp");
            await IngestStage.IngestAsync(run, unlabeled, "unlabeled", extra, UnlabeledIdPrefix);
        }
        SplitResult r;
        try
        {
            r = await DatasetSplitter.SplitAsync(run.Folder(train), perClass, run.Seed, Path.Combine(folder, PipelineGraph.LabeledFolder),
                Path.Combine(folder, PipelineGraph.UnlabeledFolder), cancellationToken: run.CancellationToken, distractors: distractors, extraUnlabeled: extra);
        }
        finally
        {
            if (extra is not null && Directory.Exists(extra)) Directory.Delete(extra, true);
        }
        var metrics = new MetricValues { [PipelineMetrics.Labeled] = r.Labeled.Rows, [PipelineMetrics.Unlabeled] = r.Unlabeled.Rows };
        if (distractors is not null) metrics[PipelineMetrics.Distractors] = distractors.Count;
        return metrics;
    }

    private static DistractorOptions? Distractors(PipelineSpec spec) =>
        spec.Distractors is string photos ? new DistractorOptions(photos, spec.DistractorCount) : null;
}
