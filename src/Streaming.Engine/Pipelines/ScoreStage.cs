using Streaming.Core;
using Streaming.Core.Selection;
using Streaming.Engine.Scoring;

namespace Streaming.Engine.Pipelines;

/// <summary>U scored by the teacher: each image's top-P' classes and probabilities, in score shards.</summary>
internal sealed class ScoreStage(string name, StageFolder unlabeled, PipelineStage teacher)
    : PipelineStage(name, [PipelineMetrics.ImagesScored, PipelineMetrics.ScoringRate])
{
    public override IReadOnlyList<PipelineStage> Inputs(PipelineSpec spec) => [unlabeled.Stage(spec), teacher];

    internal override SortedDictionary<string, object> Parameters(KeyContext key) =>
        KeyContext.Of(("top_p", key.Spec.Scoring.TopP), ("batch", key.Spec.Scoring.Batch), ("kernels", key.Kernels));

    internal override IReadOnlyList<StageOutput> Outputs(PipelineSpec spec) => [StageOutput.Shards(ScoringManifest.ScoresFolder)];

    /// <summary>The pipeline's one call of the scoring engine, kept in this one place.</summary>
    internal override async Task<MetricValues> RunAsync(StageRun run, string folder)
    {
        var spec = run.Spec;
        var r = await ScoreEngine.RunAsync(new ScoreOptions
        {
            Teacher = TeacherStage.ModelIn(run.Folder(teacher), spec), Data = unlabeled.In(run), Out = folder,
            // Selection is its own stage: the scoring here selects nothing.
            Scoring = spec.Scoring with { K = null, Compute = spec.Scoring.Compute with { Threads = spec.Scoring.Compute.Threads } },
        }, run.Reporter<(long Scored, long Total, double Rate)>((running, p) => running(p.Total > 0 ? (double)p.Scored / p.Total : null, p.Rate,
            StageRun.EtaOf(p.Scored, p.Total, p.Rate), p.Scored, null)), run.Log, run.CancellationToken);
        if (r.FailedShards.Count > 0) throw new StreamingException($"scoring: {r.FailedShards.Count} shards of U failed ({string.Join("; ", r.FailedShards)})");
        return new MetricValues { [PipelineMetrics.ImagesScored] = r.ImagesScored, [PipelineMetrics.ScoringRate] = Math.Round(r.ImagesPerSecond, 1) };
    }
}
