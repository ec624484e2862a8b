using Streaming.Core.Selection;
using Streaming.Core.Tags;

namespace Streaming.Engine.Pipelines;

/// <summary>
/// Table 5's balanced-with-tags: K images a class drawn at random among those tagged with it (W's tags as scores), with the
/// precision of that selection against U's withheld labels.
/// </summary>
internal sealed class TagsSelectStage(string name, PipelineStage tags, StageFolder unlabeled)
    : PipelineStage(name, [PipelineMetrics.TagsDhatRows, PipelineMetrics.TagsDhatPrecision], spec => spec.WeakTags)
{
    public override IReadOnlyList<PipelineStage> Inputs(PipelineSpec spec) => [tags];

    internal override SortedDictionary<string, object> Parameters(KeyContext key) =>
        KeyContext.Of(("k", key.Spec.Scoring.K!.Value), ("balance", BalanceModes.Name(BalanceMode.Random)), ("seed", key.Seed));

    internal override IReadOnlyList<StageOutput> Outputs(PipelineSpec spec) => [StageOutput.Named(SelectionManifest.DhatFileName)];

    internal override async Task<MetricValues> RunAsync(StageRun run, string folder)
    {
        string tagScores = Path.Combine(run.Folder(tags), WeakLabels.TagsFolder);
        int tagged = ScoringManifest.Load(tagScores).TopP;
        var sel = await SelectFromScores.RunAsync(tagScores, run.Spec.Scoring.K!.Value, tagged, folder, BalanceMode.Random, run.Seed, run.CancellationToken);
        var metrics = new MetricValues { [PipelineMetrics.TagsDhatRows] = sel.Selected };
        var pairs = await SelectionImages.ReadPairsAsync(folder, run.CancellationToken);
        if (await SelectStage.PrecisionAsync(pairs, unlabeled.In(run), run.CancellationToken) is double precision) metrics[PipelineMetrics.TagsDhatPrecision] = precision;
        return metrics;
    }
}
