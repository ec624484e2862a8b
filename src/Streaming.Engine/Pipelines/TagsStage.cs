using Streaming.Core.Selection;
using Streaming.Core.Tags;

namespace Streaming.Engine.Pipelines;

/// <summary>
/// W, the semi-weak setting's tagged images (<c>weak.tags</c>): U's images with tags, which are U's own (an ingested tags
/// column), or drawn by the tag-noise model with wrong tags towards the classes the baseline confuses (the "stated
/// confusion matrix"). Writes W's images and its tags as score shards, the soft targets of the stages trained on W.
/// </summary>
internal sealed class TagsStage(string name, StageFolder unlabeled, PipelineStage baseline)
    : PipelineStage(name, [PipelineMetrics.TaggedImages, PipelineMetrics.TagPrecision, PipelineMetrics.TagRecall], spec => spec.WeakTags)
{
    public override IReadOnlyList<PipelineStage> Inputs(PipelineSpec spec) =>
        FromColumn(spec) ? [unlabeled.Stage(spec)] : [unlabeled.Stage(spec), baseline];

    internal override SortedDictionary<string, object> Parameters(KeyContext key) => FromColumn(key.Spec)
        ? KeyContext.Of(("source", "the tags column of U"))
        : KeyContext.Of(("model", "tag-noise"), ("seed", key.Seed), ("confusion", $"the {baseline.Name} stage's {TrainingStage.EvalFile}"));

    internal override IReadOnlyList<StageOutput> Outputs(PipelineSpec spec) =>
        [StageOutput.Shards(WeakLabels.DatasetFolder), StageOutput.Shards(WeakLabels.TagsFolder + "/" + ScoringManifest.ScoresFolder)];

    internal override async Task<MetricValues> RunAsync(StageRun run, string folder)
    {
        string u = unlabeled.In(run);
        var r = FromColumn(run.Spec)
            ? await WeakLabels.FromColumnAsync(u, folder, run.CancellationToken)
            : await WeakLabels.MakeAsync(u, folder, new TagNoiseModel
            {
                Seed = run.Seed, Confusion = WeakLabels.ReadConfusion(Path.Combine(run.Folder(baseline), TrainingStage.EvalFile)),
            }, run.CancellationToken);
        run.Log($"      {Name}: " + WeakLabels.Describe(r));
        var metrics = new MetricValues { [PipelineMetrics.TaggedImages] = r.Quality.Tagged };
        if (!double.IsNaN(r.Quality.Precision))
        {
            metrics[PipelineMetrics.TagPrecision] = Math.Round(r.Quality.Precision, 4);
            metrics[PipelineMetrics.TagRecall] = Math.Round(r.Quality.Recall, 4);
        }
        return metrics;
    }

    private static bool FromColumn(PipelineSpec spec) => spec.WeakTagsFrom == "column";
}
