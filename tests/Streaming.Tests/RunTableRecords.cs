using System.Text.Json;
using Streaming.Engine.Pipelines;

namespace Streaming.Tests;

/// <summary>Run records for the result table's tests: the shapes of run that print different rows.</summary>
internal static class RunTableRecords
{
    /// <summary>The recorded default pipeline (docs/runs), as committed.</summary>
    public static RunRecord Default() => RunRecord.Load(Path.Combine(TestPaths.Root, "docs", "runs", "default-pipeline-2026-11-29", "avx2", "run.json"));

    /// <summary>A semi-weak run with the control, every stage's metric there, its first stages reused.</summary>
    public static RunRecord SemiWeak() => Make(
        ["ingest-train", "ingest-test", "split", "dedup", "baseline", "control", "tags", "teacher-weak", "teacher", "score", "select", "dhat-images",
         "student", "finetune", "weak-student", "weak-finetune", "tags-select", "tags-images", "tags-student", "tags-finetune"], reused: 3,
        new() { ["teacher.arch"] = "resnet20", ["student.arch"] = "cnn-small", ["scoring.k"] = 2000, ["scoring.p"] = 1, ["name"] = "semi" },
        new()
        {
            ["labeled"] = 1000, ["unlabeled"] = 59000, ["dedup_removed"] = 12, ["baseline"] = 0.8028, ["control"] = 0.81234, ["tag_precision"] = 0.6827,
            ["tag_recall"] = 0.5025, ["tagged_images"] = 31000, ["teacher_weak"] = 0.5, ["teacher"] = 0.8335, ["pseudo_label_precision"] = 0.95215,
            ["student_pretrained"] = 0.7653, ["student_finetuned"] = 0.8004, ["weak_pretrained"] = 0.7, ["weak_finetuned"] = 0.79, ["tags_dhat_precision"] = 0.725,
            ["tags_pretrained"] = 0.6, ["tags_finetuned"] = 0.78, ["scoring_images_per_second"] = 755.7,
        });

    /// <summary>A semi-weak run on tags whose precision is unknown (U without withheld labels): no tag or selection precision.</summary>
    public static RunRecord SemiWeakWithoutTruth() => Make(
        ["ingest-train", "ingest-test", "split", "baseline", "tags", "teacher-weak", "teacher", "score", "select", "dhat-images",
         "student", "finetune", "weak-student", "weak-finetune", "tags-select", "tags-images", "tags-student", "tags-finetune"], reused: 0,
        new() { ["teacher.arch"] = "resnet20", ["student.arch"] = "resnet20", ["scoring.k"] = 16000, ["scoring.p"] = 10, ["name"] = "column" },
        new()
        {
            ["baseline"] = 0.5, ["tagged_images"] = 100, ["teacher_weak"] = 0.25, ["teacher"] = 0.625, ["student_pretrained"] = 0.125, ["student_finetuned"] = 0.875,
            ["weak_pretrained"] = 0.1, ["weak_finetuned"] = 0.2, ["tags_pretrained"] = 0.3, ["tags_finetuned"] = 0.4,
        });

    /// <summary>An imported ONNX teacher (not evaluated: no teacher metric) on a plain pipeline, every stage reused.</summary>
    public static RunRecord ImportedOnnx() => Make(
        ["ingest-train", "ingest-test", "split", "baseline", "teacher", "score", "select", "dhat-images", "student", "finetune"], reused: 10,
        new() { ["teacher.model"] = "/models/teacher-cnn.onnx", ["student.arch"] = "cnn-small:w2", ["scoring.k"] = 10, ["scoring.p"] = 2, ["name"] = "onnx" },
        new() { ["baseline"] = 0.06, ["student_pretrained"] = 0.06, ["student_finetuned"] = 0.07, ["pseudo_label_precision"] = 1 });

    public static IReadOnlyDictionary<string, Func<RunRecord>> All { get; } = new Dictionary<string, Func<RunRecord>>(StringComparer.Ordinal)
    {
        ["default"] = Default, ["semi-weak"] = SemiWeak, ["semi-weak-without-truth"] = SemiWeakWithoutTruth, ["imported-onnx"] = ImportedOnnx,
    };

    private static RunRecord Make(string[] stages, int reused, Dictionary<string, object> resolved, Dictionary<string, double> metrics) => new()
    {
        Resolved = new(resolved.ToDictionary(kv => kv.Key, kv => JsonSerializer.SerializeToElement(kv.Value)), StringComparer.Ordinal),
        Metrics = new(metrics, StringComparer.Ordinal),
        Stages = stages.Select((name, i) => new StageEntry(name, "k", i < reused, 1, "cache/" + name, new(StringComparer.Ordinal), new(StringComparer.Ordinal),
            new(StringComparer.Ordinal), "", new(StringComparer.Ordinal))).ToList(),
        WallSeconds = 321,
    };
}
