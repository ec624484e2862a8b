using Streaming.Engine.Dedup;

namespace Streaming.Engine.Pipelines;

/// <summary>
/// U without the duplicates of the test set (exact bytes or pixels, or a dHash within the threshold whose cells are close), before anything reads
/// U; on with <c>data.dedup_against: test</c>.
/// </summary>
internal sealed class DedupStage(string name, PipelineStage split, PipelineStage test)
    : PipelineStage(name, [PipelineMetrics.DedupRemoved, .. PipelineMetrics.DedupKinds.Values], spec => spec.DedupAgainstTest)
{
    public override IReadOnlyList<PipelineStage> Inputs(PipelineSpec spec) => [split, test];

    internal override SortedDictionary<string, object> Parameters(KeyContext key) => KeyContext.Of(("against", "test"),
        ("max_hamming", key.Spec.DedupMaxHamming), ("max_cell_rms", key.Spec.DedupMaxCellRms),
        ("hash", "sha256 bytes, sha256 pixels, dhash 17x16 margin 2, cells 17x16"));

    internal override IReadOnlyList<StageOutput> Outputs(PipelineSpec spec) =>
        [StageOutput.Shards(PipelineGraph.UnlabeledFolder), StageOutput.Named(Deduplicator.DuplicatesFile)];

    internal override async Task<MetricValues> RunAsync(StageRun run, string folder)
    {
        string u = Path.Combine(run.Folder(split), PipelineGraph.UnlabeledFolder), report = Path.Combine(folder, "report");
        var (summary, pairs) = await Deduplicator.RunAsync(new DedupOptions
        {
            Data = u, Against = [run.Folder(test)], Out = report, MaxHamming = run.Spec.DedupMaxHamming, MaxCellRms = run.Spec.DedupMaxCellRms, Threads = run.Spec.Scoring.Compute.Threads,
        }, run.Log, null, run.CancellationToken);
        File.Move(Path.Combine(report, Deduplicator.DuplicatesFile), Path.Combine(folder, Deduplicator.DuplicatesFile));
        await Deduplicator.RemoveAsync(u, pairs.Select(p => p.Id).ToHashSet(StringComparer.Ordinal), Path.Combine(folder, PipelineGraph.UnlabeledFolder),
            run.CancellationToken);
        var metrics = new MetricValues { [PipelineMetrics.DedupRemoved] = pairs.Count };
        foreach (var (kind, n) in summary.Kinds) metrics[PipelineMetrics.DedupKinds[kind]] = n;
        return metrics;
    }
}
