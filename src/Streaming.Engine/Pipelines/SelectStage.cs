using Streaming.Core.Datasets;
using Streaming.Core.Selection;

namespace Streaming.Engine.Pipelines;

/// <summary>
/// D-hat: the K best-scored images of each class among each image's top-P classes, balanced as the manifest says, with the
/// precision of its pseudo-labels against U's withheld labels, and what share of it is distractors or the separate collection.
/// </summary>
internal sealed class SelectStage(string name, PipelineStage score, PipelineStage split, StageFolder unlabeled) : PipelineStage(name,
    [PipelineMetrics.DhatRows, PipelineMetrics.DhatDistinctImages, PipelineMetrics.PseudoLabelPrecision, PipelineMetrics.DhatDistractorShare,
     PipelineMetrics.DhatUnlabeledSourceRows, PipelineMetrics.DhatUnlabeledSourceShare])
{
    /// <remarks>U's withheld labels, which the precision reads, come from the split; dedup only drops images, which scoring already saw.</remarks>
    public override IReadOnlyList<PipelineStage> Inputs(PipelineSpec spec) => [score, split];

    internal override SortedDictionary<string, object> Parameters(KeyContext key) =>
        KeyContext.Of(("k", key.Spec.Scoring.K!.Value), ("p", key.Spec.Scoring.P), ("balance", BalanceModes.Name(key.Spec.Scoring.Balance)), ("seed", key.Seed));

    internal override IReadOnlyList<StageOutput> Outputs(PipelineSpec spec) => [StageOutput.Named(SelectionManifest.DhatFileName)];

    internal override async Task<MetricValues> RunAsync(StageRun run, string folder)
    {
        var spec = run.Spec;
        var sel = await SelectFromScores.RunAsync(run.Folder(score), spec.Scoring.K!.Value, spec.Scoring.P, folder, spec.Scoring.Balance, run.Seed, run.CancellationToken);
        var metrics = new MetricValues { [PipelineMetrics.DhatRows] = sel.Selected, [PipelineMetrics.DhatDistinctImages] = sel.DistinctImages };
        var pairs = await SelectionImages.ReadPairsAsync(folder, run.CancellationToken);
        if (await PrecisionAsync(pairs, unlabeled.In(run), run.CancellationToken) is double precision) metrics[PipelineMetrics.PseudoLabelPrecision] = precision;
        if (spec.Distractors is not null) metrics[PipelineMetrics.DhatDistractorShare] = DistractorShare(pairs);
        if (spec.Unlabeled is not null)
        {
            // How many of the separate collection's images the ranking let into D-hat (out-of-domain ones, when its classes differ).
            int fromSource = pairs.Count(p => p.Id.StartsWith(SplitStage.UnlabeledIdPrefix, StringComparison.Ordinal));
            metrics[PipelineMetrics.DhatUnlabeledSourceRows] = fromSource;
            metrics[PipelineMetrics.DhatUnlabeledSourceShare] = pairs.Count == 0 ? 0 : fromSource / (double)pairs.Count;
        }
        return metrics;
    }

    /// <summary>The fraction of D-hat rows (its (class, id) pairs) that are distractors (random crops of photos, of no class).</summary>
    public static double DistractorShare(IReadOnlyList<(int Class, string Id)> pairs) =>
        pairs.Count == 0 ? 0 : pairs.Count(p => Distractors.IsDistractor(p.Id)) / (double)pairs.Count;

    /// <summary>The fraction of D-hat rows (its (class, id) pairs) whose withheld true label is the class they were selected for; null when U has no withheld labels.</summary>
    public static async Task<double?> PrecisionAsync(IReadOnlyList<(int Class, string Id)> pairs, string unlabeled, CancellationToken ct)
    {
        var manifest = DatasetManifest.Load(unlabeled);
        if (manifest.WithheldLabelsFile is null) return null;
        var truth = await DatasetSplitter.ReadWithheldAsync(Path.Combine(unlabeled, manifest.WithheldLabelsFile), ct);
        if (pairs.Count == 0) return null;
        return pairs.Count(p => truth.TryGetValue(p.Id, out int y) && y == p.Class) / (double)pairs.Count;
    }
}
