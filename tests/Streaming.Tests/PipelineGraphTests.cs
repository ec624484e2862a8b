using System.Text;
using Streaming.Engine.Pipelines;
using Xunit;

namespace Streaming.Tests;

/// <summary>
/// The stage graph as declared: each name and metric key once, inputs that run before the stages that read them, optional
/// stages switched on by their manifest keys, replay's tolerances as they were, and docs/architecture.md's drawing of it.
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

    /// <summary>docs/architecture.md draws the graph as the code declares it; on a change, paste the table this prints.</summary>
    [Fact]
    public void ArchitectureNotes_DrawTheGraphAsDeclared()
    {
        string drawing = Drawing();
        string notes = File.ReadAllText(Path.Combine(TestPaths.Root, "docs", "architecture.md")).ReplaceLineEndings("\n");
        Assert.True(notes.Contains(drawing, StringComparison.Ordinal), "docs/architecture.md should hold this table:\n" + drawing);
    }

    /// <summary>
    /// The graph as a Markdown table, over the pipelines of <see cref="StageKeyScenarios"/> with a trained teacher: an input
    /// or a key parameter that only some of them have is starred; the imported teacher has a row of its own.
    /// </summary>
    internal static string Drawing()
    {
        string[] trained = ["plain", "everything", "semi-weak-noise", "semi-weak-column"];
        var sb = new StringBuilder("| stage | runs | inputs | key parameters | outputs | metrics |\n| --- | --- | --- | --- | --- | --- |\n");
        foreach (var stage in PipelineGraph.All)
            sb.Append(Row(stage, stage.Name, Switch(stage), trained.Select(n => StageKeyScenarios.All[n]).Where(stage.IsOn).ToList()));
        var imported = StageKeyScenarios.Imported with { TeacherModel = "teacher.model's file" };
        sb.Append(Row(PipelineGraph.Teacher, PipelineGraph.Teacher.Name + " (imported)", "instead, with `teacher.model`", [imported]));
        return sb.ToString();
    }

    private static string Row(PipelineStage stage, string name, string runs, IReadOnlyList<PipelineSpec> specs)
    {
        var context = specs.Select(s => new KeyContext(s, StageKeyScenarios.Kernels, _ => "", _ => "")).ToList();
        string inputs = Starred(specs.Select(s => stage.Inputs(s).Select(i => i.Name)).ToList());
        string parameters = Starred(context.Select(k => (IEnumerable<string>)stage.Parameters(k).Keys).ToList());
        string outputs = string.Join(", ", specs.SelectMany(stage.Outputs).Select(o => o.ToString()).Distinct());
        string metrics = string.Join(", ", stage.Metrics.Select(m => m.Key));
        return $"| {name} | {runs} | {inputs} | {parameters} | {outputs} | {metrics} |\n";
    }

    /// <summary>The names of every list, in first-seen order, those missing from some list starred.</summary>
    private static string Starred(IReadOnlyList<IEnumerable<string>> lists)
    {
        var all = lists.SelectMany(l => l).Distinct().ToList();
        return string.Join(", ", all.Select(n => lists.All(l => l.Contains(n)) ? n : n + "*"));
    }

    /// <summary>The manifest key that switches a stage on, found by switching each on in turn.</summary>
    private static string Switch(PipelineStage stage)
    {
        var plain = StageKeyScenarios.Plain;
        if (stage.IsOn(plain)) return "always";
        (string Key, PipelineSpec Spec)[] switches =
        [
            ("data.dedup_against: test", plain with { DedupAgainstTest = true }),
            ("baseline.equal_budget", plain with { EqualBudgetControl = true }),
            ("weak.tags", plain with { WeakTagsFrom = "noise" }),
        ];
        return string.Join(", ", switches.Where(s => stage.IsOn(s.Spec)).Select(s => $"`{s.Key}`"));
    }
}
