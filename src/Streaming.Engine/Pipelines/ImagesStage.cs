using Streaming.Core.Datasets;
using Streaming.Core.Selection;

namespace Streaming.Engine.Pipelines;

/// <summary>A selection's images copied out of U into a dataset labeled by the class each was selected for, named as D's classes are.</summary>
internal sealed class ImagesStage(string name, PipelineStage selection, PipelineStage split, StageFolder unlabeled, StageMetric written,
    Func<PipelineSpec, bool>? on = null) : PipelineStage(name, [written], on)
{
    public override IReadOnlyList<PipelineStage> Inputs(PipelineSpec spec) => new[] { selection, split, unlabeled.Stage(spec) }.Distinct().ToList();

    internal override SortedDictionary<string, object> Parameters(KeyContext key) => KeyContext.Of();

    internal override IReadOnlyList<StageOutput> Outputs(PipelineSpec spec) => [StageOutput.Shards()];

    internal override async Task<MetricValues> RunAsync(StageRun run, string folder)
    {
        var classes = DatasetManifest.Load(run.D).Classes;
        var m = await SelectionImages.ToDatasetAsync(run.Folder(selection), folder, unlabeled.In(run), classes, cancellationToken: run.CancellationToken);
        return new MetricValues { [written] = m.Rows };
    }
}
