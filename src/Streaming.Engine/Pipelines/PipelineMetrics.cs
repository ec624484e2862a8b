using Streaming.Engine.Dedup;

namespace Streaming.Engine.Pipelines;

/// <summary>
/// Every metric a pipeline's stages report, declared once: its key in run.json, its kind and its row in <c>run</c>'s table.
/// A stage lists the ones it reports (<see cref="PipelineStage.Metrics"/>); the runner, <c>run</c>'s table, <c>replay</c>
/// and <c>report</c> read them here, so no metric's key is spelled anywhere else.
/// </summary>
public static class PipelineMetrics
{
    /// <summary>Images in D and in U (split), and distractors added to U.</summary>
    public static readonly StageMetric Labeled = new("labeled", MetricKind.Count), Unlabeled = new("unlabeled", MetricKind.Count),
        Distractors = new("distractors", MetricKind.Count);

    /// <summary>Images of U removed as duplicates of the test set (dedup).</summary>
    public static readonly StageMetric DedupRemoved = new("dedup_removed", MetricKind.Count);

    /// <summary>Of those, how many of each kind of duplicate, by <see cref="Deduplicator.Kinds"/>.</summary>
    public static readonly IReadOnlyDictionary<string, StageMetric> DedupKinds =
        Deduplicator.Kinds.ToDictionary(kind => kind, kind => new StageMetric("dedup_" + kind, MetricKind.Count), StringComparer.Ordinal);

    /// <summary>The supervised baseline's top-1, and the equal-budget control's.</summary>
    public static readonly StageMetric Baseline = TopOne("baseline", "baseline (supervised on D)", TableModel.Student),
        Control = TopOne("control", "control (baseline, student's budget)", TableModel.Student);

    /// <summary>W's images, and the precision and recall of their tags against U's withheld labels (tags).</summary>
    public static readonly StageMetric TaggedImages = new("tagged_images", MetricKind.Count), TagRecall = new("tag_recall", MetricKind.Fraction),
        TagPrecision = new("tag_precision", MetricKind.Fraction)
        {
            Row = new TableRow("tag precision / recall on U", TableModel.None, TableSection.Tags) { Paired = TagRecall },
        };

    /// <summary>The teacher's top-1 after its pre-training on W's tags, and after its training on D.</summary>
    public static readonly StageMetric TeacherWeak = TopOne("teacher_weak", "teacher, pre-trained on W's tags", TableModel.Teacher),
        Teacher = new("teacher", MetricKind.Fraction)
        {
            Row = new TableRow("teacher (on D)", TableModel.Teacher) { After = (TeacherWeak, "teacher (W's tags, then D)") },
        };

    /// <summary>Images of U scored, and how fast.</summary>
    public static readonly StageMetric ImagesScored = new("images_scored", MetricKind.Count), ScoringRate = new("scoring_images_per_second", MetricKind.Rate);

    /// <summary>D-hat's rows and distinct images (select).</summary>
    public static readonly StageMetric DhatRows = new("dhat_rows", MetricKind.Count), DhatDistinctImages = new("dhat_distinct_images", MetricKind.Count);

    /// <summary>The share of D-hat's rows whose withheld label is the class they were selected for.</summary>
    public static readonly StageMetric PseudoLabelPrecision = new("pseudo_label_precision", MetricKind.Fraction)
    {
        Row = new TableRow("pseudo-label precision of D-hat", TableModel.KAndP, TableSection.PseudoLabels),
    };

    /// <summary>The share of D-hat's rows that are distractors, and how many and what share come from the separate unlabeled collection.</summary>
    public static readonly StageMetric DhatDistractorShare = new("dhat_distractor_share", MetricKind.Fraction),
        DhatUnlabeledSourceRows = new("dhat_unlabeled_source_rows", MetricKind.Count), DhatUnlabeledSourceShare = new("dhat_unlabeled_source_share", MetricKind.Fraction);

    /// <summary>D-hat's images written (dhat-images).</summary>
    public static readonly StageMetric DhatImagesWritten = new("dhat_images_written", MetricKind.Count);

    /// <summary>The student's top-1 after its pre-training on D-hat, and after its fine-tuning on D.</summary>
    public static readonly StageMetric StudentPretrained = TopOne("student_pretrained", "student, pre-trained on D-hat", TableModel.Student),
        StudentFinetuned = TopOne("student_finetuned", "student, fine-tuned on D", TableModel.Student);

    /// <summary>The weakly supervised baseline's top-1 after its pre-training on W's tags, and after its fine-tuning on D.</summary>
    public static readonly StageMetric WeakPretrained = new("weak_pretrained", MetricKind.Fraction),
        WeakFinetuned = TopOne("weak_finetuned", "weakly supervised (W's tags, then D)", TableModel.Student);

    /// <summary>The balanced-with-tags selection's rows and precision (tags-select), and its images written (tags-images).</summary>
    public static readonly StageMetric TagsDhatRows = new("tags_dhat_rows", MetricKind.Count),
        TagsDhatPrecision = new("tags_dhat_precision", MetricKind.Fraction) { Row = new TableRow("precision of balanced-with-tags", TableModel.K, TableSection.Tags) },
        TagsDhatImagesWritten = new("tags_dhat_images_written", MetricKind.Count);

    /// <summary>The balanced-with-tags student's top-1 after its pre-training, and after its fine-tuning on D.</summary>
    public static readonly StageMetric TagsPretrained = new("tags_pretrained", MetricKind.Fraction),
        TagsFinetuned = TopOne("tags_finetuned", "balanced-with-tags, fine-tuned", TableModel.Student);

    /// <summary>The images a second of the training that a top-1 metric evaluates: its key with a suffix.</summary>
    public static StageMetric TrainingRate(StageMetric topOne) => new(topOne.Key + "_train_images_per_second", MetricKind.Rate);

    private static StageMetric TopOne(string key, string label, TableModel model) => new(key, MetricKind.Fraction) { Row = new TableRow(label, model) };
}
