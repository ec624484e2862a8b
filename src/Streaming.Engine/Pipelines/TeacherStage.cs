using Streaming.Models.IO;

namespace Streaming.Engine.Pipelines;

/// <summary>
/// The teacher: trained as <paramref name="trained"/> says when the manifest names its architecture (<c>teacher.arch</c>), else
/// the model it names (<c>teacher.model</c>) imported as it is, keyed by its content, and evaluated on the test set (an ONNX
/// model is not: it has no architecture here to evaluate with).
/// </summary>
internal sealed class TeacherStage(TrainingStage trained, PipelineStage test) : PipelineStage(trained.Name, trained.Metrics)
{
    public override IReadOnlyList<PipelineStage> Inputs(PipelineSpec spec) => Imported(spec) is null ? trained.Inputs(spec) : [test];

    internal override SortedDictionary<string, object> Parameters(KeyContext key) => Imported(key.Spec) is string model
        ? KeyContext.Of(("model_sha256", key.FileSha256(model)), ("file", Path.GetFileName(model)))
        : trained.Parameters(key);

    internal override IReadOnlyList<StageOutput> Outputs(PipelineSpec spec) =>
        Imported(spec) is string model ? [StageOutput.Named(Path.GetFileName(model))] : trained.Outputs(spec);

    internal override Task<MetricValues> RunAsync(StageRun run, string folder) =>
        Imported(run.Spec) is string model ? ImportAsync(run, model, folder) : trained.RunAsync(run, folder);

    /// <summary>The teacher's model in its stage's folder: what scoring (and a profile of it) loads.</summary>
    public static string ModelIn(string folder, PipelineSpec spec) =>
        Path.Combine(folder, spec.TeacherModel is string model ? Path.GetFileName(model) : ModelFile.DefaultName);

    /// <summary>The imported model's file, or null when the teacher is trained.</summary>
    private static string? Imported(PipelineSpec spec) => spec.TeacherArch is null ? spec.TeacherModel : null;

    private static async Task<MetricValues> ImportAsync(StageRun run, string model, string folder)
    {
        string copy = Path.Combine(folder, Path.GetFileName(model));
        File.Copy(model, copy);
        var metrics = new MetricValues();
        if (!model.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase)) metrics[PipelineMetrics.Teacher] = (await TrainingStage.EvaluateAsync(run, copy)).Top1;
        else run.Log("note: an ONNX teacher is not evaluated on the test set here (use 'streaming eval' with its architecture)");
        return metrics;
    }
}
