using Streaming.Engine.Pipelines;
using Xunit;

namespace Streaming.Tests;

/// <summary>
/// The stage graph as declared: each name and metric key once, inputs that run before the stages that read them, optional
/// stages switched on by their manifest keys, and replay's tolerances as they were.
/// </summary>
public class PipelineGraphTests
{
    [Fact]
    public void TheGraph_DeclaresEachStageNameAndMetricKeyOnce()
    {
        Assert.Equal(PipelineGraph.All.Count, PipelineGraph.All.Select(s => s.Name).Distinct().Count());
        var keys = PipelineGraph.All.SelectMany(s => s.Metrics).Select(m => m.Key).ToList();
        Assert.Equal(keys.Count, keys.Distinct().Count());
        Assert.All(keys, key => Assert.NotNull(PipelineGraph.MetricOf(key)));
    }

    [Fact]
    public void EveryStagesInputs_RunBeforeIt_InEveryKindOfPipeline()
    {
        foreach (var (scenario, spec) in StageKeyScenarios.All)
        {
            var stages = PipelineGraph.StagesOf(spec).ToList();
            foreach (var (stage, i) in stages.Select((s, i) => (s, i)))
                Assert.All(stage.Inputs(spec), input => Assert.True(stages.IndexOf(input) is int at && at >= 0 && at < i,
                    $"{scenario}: {stage.Name} reads {input.Name}, which does not run before it"));
        }
    }

    [Fact]
    public void OptionalStages_AreTheOnesTheirManifestKeysSwitchOn()
    {
        Assert.Equal(["ingest-train", "ingest-test", "split", "baseline", "teacher", "score", "select", "dhat-images", "student", "finetune"],
            PipelineGraph.NamesOf(StageKeyScenarios.Plain));
        Assert.Equal(["ingest-train", "ingest-test", "split", "dedup", "baseline", "control", "tags", "teacher-weak", "teacher", "score", "select", "dhat-images",
            "student", "finetune", "weak-student", "weak-finetune", "tags-select", "tags-images", "tags-student", "tags-finetune"],
            PipelineGraph.NamesOf(StageKeyScenarios.SemiWeakNoise));
        Assert.Equal(PipelineGraph.Dedup, PipelineGraph.UnlabeledOf(StageKeyScenarios.Everything));
        Assert.Equal(PipelineGraph.Split, PipelineGraph.UnlabeledOf(StageKeyScenarios.Plain));
    }

    /// <summary>
    /// The metrics a replay on other kernels holds to points (fractions), as replay listed them before the metrics were
    /// declared; the rest are held to a share of their value, and rates are not compared.
    /// </summary>
    [Fact]
    public void FractionMetrics_AreTheOnesReplayHeldToPoints()
    {
        string[] fractions = ["baseline", "teacher", "student_pretrained", "student_finetuned", "pseudo_label_precision", "dhat_distractor_share",
            "dhat_unlabeled_source_share", "control", "teacher_weak", "weak_pretrained", "weak_finetuned", "tags_pretrained", "tags_finetuned", "tag_precision",
            "tag_recall", "tags_dhat_precision"];
        var metrics = PipelineGraph.All.SelectMany(s => s.Metrics).ToList();
        Assert.Equal(fractions.Order(StringComparer.Ordinal), metrics.Where(m => m.Kind == MetricKind.Fraction).Select(m => m.Key).Order(StringComparer.Ordinal));
        Assert.All(metrics.Where(m => m.Kind == MetricKind.Rate), m => Assert.EndsWith("per_second", m.Key));
        Assert.All(metrics.Where(m => m.Kind != MetricKind.Rate), m => Assert.DoesNotContain("per_second", m.Key));
    }
}
