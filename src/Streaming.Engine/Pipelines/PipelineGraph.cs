using Streaming.Core.Tags;

namespace Streaming.Engine.Pipelines;

/// <summary>
/// A pipeline's stages, declared once, in the order they run (each reads only stages before it): ingest train and test,
/// split into D and U, the supervised baseline, the teacher, scoring U, selection (D-hat), D-hat as images, the student's
/// pre-training and its fine-tuning; with the optional stages that a manifest switches on (dedup, the equal-budget control
/// and the semi-weak setting's). The runner walks it; <c>run</c>'s table, <c>replay</c>, <c>report</c> and <c>profile</c>
/// read it. docs/architecture.md draws it (<c>PipelineGraphTests</c> checks the drawing against this).
/// </summary>
public static class PipelineGraph
{
    /// <summary>The folders of split's stage folder that hold D and U (dedup's holds its U under the same name).</summary>
    public const string LabeledFolder = "d", UnlabeledFolder = "u";

    /// <summary>The training source, ingested.</summary>
    public static readonly PipelineStage IngestTrain = new IngestStage("ingest-train", spec => spec.Train, "train");

    /// <summary>The test set, ingested: every model is evaluated on it.</summary>
    public static readonly PipelineStage IngestTest = new IngestStage("ingest-test", spec => spec.Test, "test");

    /// <summary>D and U.</summary>
    public static readonly PipelineStage Split = new SplitStage("split", IngestTrain);

    /// <summary>U without the test set's duplicates (<c>data.dedup_against: test</c>).</summary>
    public static readonly PipelineStage Dedup = new DedupStage("dedup", Split, IngestTest);

    private static readonly StageFolder D = StageFolder.Of(Split, LabeledFolder), U = new(UnlabeledOf, UnlabeledFolder);

    /// <summary>The student's architecture trained on D alone.</summary>
    public static readonly PipelineStage Baseline = new TrainingStage("baseline", PipelineMetrics.Baseline, spec => spec.Baseline, StudentArch, D);

    /// <summary>The baseline given the student's whole budget (<c>baseline.equal_budget</c>).</summary>
    public static readonly PipelineStage Control =
        new TrainingStage("control", PipelineMetrics.Control, spec => spec.Control, StudentArch, D, on: spec => spec.EqualBudgetControl);

    /// <summary>W and its tags (<c>weak.tags</c>).</summary>
    public static readonly PipelineStage Tags = new TagsStage("tags", U, Baseline);

    private static readonly StageFolder W = StageFolder.Of(Tags, WeakLabels.DatasetFolder);
    private static readonly SoftTargets TagTargets =
        new(StageFolder.Of(Tags, WeakLabels.TagsFolder), $"weak: the {Tags.Name} stage's tags, each 1/count");

    /// <summary>The semi-weak teacher's pre-training on W's tags.</summary>
    public static readonly PipelineStage TeacherWeak = new TrainingStage("teacher-weak", PipelineMetrics.TeacherWeak, spec => spec.Weak, TeacherArch, W,
        on: Weak) { Targets = _ => TagTargets };

    /// <summary>The teacher, trained on D (from its pre-training on W's tags, in the semi-weak setting), or imported.</summary>
    public static readonly PipelineStage Teacher = new TeacherStage(new TrainingStage("teacher", PipelineMetrics.Teacher, spec => spec.Teacher!, TeacherArch, D)
    {
        Init = spec => TeacherWeak.IsOn(spec) ? TeacherWeak : null,
    }, IngestTest);

    /// <summary>U scored by the teacher.</summary>
    public static readonly PipelineStage Score = new ScoreStage("score", U, Teacher);

    /// <summary>D-hat.</summary>
    public static readonly PipelineStage Select = new SelectStage("select", Score, Split, U);

    /// <summary>D-hat's images.</summary>
    public static readonly PipelineStage DhatImages = new ImagesStage("dhat-images", Select, Split, U, PipelineMetrics.DhatImagesWritten);

    private static readonly SoftTargets ScoreTargets = new(StageFolder.Of(Score), $"soft: the {Score.Name} stage's top-P' probabilities");

    /// <summary>The student pre-trained on D-hat (on the teacher's top-P' probabilities with <c>student.targets: soft</c>).</summary>
    public static readonly PipelineStage Student = new TrainingStage("student", PipelineMetrics.StudentPretrained, spec => spec.Student, StudentArch,
        StageFolder.Of(DhatImages)) { Targets = spec => spec.SoftTargets ? ScoreTargets : null };

    /// <summary>The student fine-tuned on D.</summary>
    public static readonly PipelineStage Finetune = new TrainingStage("finetune", PipelineMetrics.StudentFinetuned, spec => spec.Finetune, StudentArch, D)
    {
        Init = _ => Student,
    };

    /// <summary>Table 6's weakly supervised baseline: the student's architecture pre-trained on W's tags ...</summary>
    public static readonly PipelineStage WeakStudent = new TrainingStage("weak-student", PipelineMetrics.WeakPretrained, spec => spec.Weak, StudentArch, W,
        on: Weak) { Targets = _ => TagTargets };

    /// <summary>... then fine-tuned on D.</summary>
    public static readonly PipelineStage WeakFinetune = new TrainingStage("weak-finetune", PipelineMetrics.WeakFinetuned, spec => spec.Finetune, StudentArch,
        D, on: Weak) { Init = _ => WeakStudent };

    /// <summary>Table 5's balanced-with-tags selection ...</summary>
    public static readonly PipelineStage TagsSelect = new TagsSelectStage("tags-select", Tags, U);

    /// <summary>... its images ...</summary>
    public static readonly PipelineStage TagsImages = new ImagesStage("tags-images", TagsSelect, Split, U, PipelineMetrics.TagsDhatImagesWritten, on: Weak);

    /// <summary>... a student pre-trained on them ...</summary>
    public static readonly PipelineStage TagsStudent = new TrainingStage("tags-student", PipelineMetrics.TagsPretrained, spec => spec.Student, StudentArch,
        StageFolder.Of(TagsImages), on: Weak);

    /// <summary>... and fine-tuned on D.</summary>
    public static readonly PipelineStage TagsFinetune = new TrainingStage("tags-finetune", PipelineMetrics.TagsFinetuned, spec => spec.Finetune, StudentArch,
        D, on: Weak) { Init = _ => TagsStudent };

    /// <summary>Every stage, in the order they run.</summary>
    public static readonly IReadOnlyList<PipelineStage> All =
    [
        IngestTrain, IngestTest, Split, Dedup, Baseline, Control, Tags, TeacherWeak, Teacher, Score, Select, DhatImages, Student, Finetune,
        WeakStudent, WeakFinetune, TagsSelect, TagsImages, TagsStudent, TagsFinetune,
    ];

    /// <summary>The stages a manifest runs, in order.</summary>
    public static IReadOnlyList<PipelineStage> StagesOf(PipelineSpec spec) => All.Where(s => s.IsOn(spec)).ToList();

    /// <summary>Their names, as the progress list shows them.</summary>
    public static IReadOnlyList<string> NamesOf(PipelineSpec spec) => StagesOf(spec).Select(s => s.Name).ToList();

    /// <summary>The stage whose U the stages after split read: dedup's when the run has it, else split's.</summary>
    public static PipelineStage UnlabeledOf(PipelineSpec spec) => Dedup.IsOn(spec) ? Dedup : Split;

    /// <summary>The declaration of the metric with this key, or null for one no stage declares (a record from another engine).</summary>
    public static StageMetric? MetricOf(string key) => All.SelectMany(s => s.Metrics).FirstOrDefault(m => m.Key == key);

    /// <summary>The teacher's model in the teacher stage's folder.</summary>
    public static string TeacherModelIn(string teacherFolder, PipelineSpec spec) => TeacherStage.ModelIn(teacherFolder, spec);

    private static string StudentArch(PipelineSpec spec) => spec.StudentArch;

    private static string TeacherArch(PipelineSpec spec) => spec.TeacherArch!;

    private static bool Weak(PipelineSpec spec) => spec.WeakTags;
}
