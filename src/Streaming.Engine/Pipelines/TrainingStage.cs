using System.Globalization;
using Streaming.Models;
using Streaming.Models.Evaluation;
using Streaming.Models.IO;
using Streaming.Models.Training;

namespace Streaming.Engine.Pipelines;

/// <summary>
/// A model trained on a dataset with one of the manifest's budgets, from an earlier stage's model when it has one and on
/// soft targets when it has them, then evaluated on the test set. Its inputs are what it reads: the dataset's stage, the
/// model's and the targets'.
/// </summary>
internal sealed class TrainingStage(string name, StageMetric metric, Func<PipelineSpec, TrainingSection> section, Func<PipelineSpec, string> arch,
    StageFolder data, Func<PipelineSpec, bool>? on = null) : PipelineStage(name, [metric, PipelineMetrics.TrainingRate(metric)], on)
{
    /// <summary>The evaluation on the test set, next to the model.</summary>
    public const string EvalFile = "eval-test.json";

    /// <summary>The stage whose model the training starts from; null: from scratch.</summary>
    public Func<PipelineSpec, PipelineStage?> Init { get; init; } = _ => null;

    /// <summary>The soft targets the training learns from; null: the dataset's labels.</summary>
    public Func<PipelineSpec, SoftTargets?> Targets { get; init; } = _ => null;

    public override IReadOnlyList<PipelineStage> Inputs(PipelineSpec spec) =>
        new[] { data.Stage(spec), Init(spec), Targets(spec)?.Folder.Stage(spec) }.OfType<PipelineStage>().Distinct().ToList();

    internal override SortedDictionary<string, object> Parameters(KeyContext key)
    {
        var (spec, budget, init) = (key.Spec, section(key.Spec), Init(key.Spec));
        var parameters = KeyContext.Of(("arch", arch(spec)), ("images", budget.Images), ("batch", budget.Batch), ("lr", budget.Lr),
            ("schedule", budget.Schedule), ("seed", key.Seed), ("threads", spec.Scoring.Compute.Threads), ("init", init is null ? "" : $"the {init.Name} stage's model"),
            ("kernels", key.Kernels));
        // Only soft targets and more than one rank add a key, so that the other stages' cache keys stay as they were.
        if (Targets(spec) is { } targets) parameters["targets"] = targets.Described;
        if (budget.Ranks > 1) parameters["ranks"] = budget.Ranks; // the result depends on N (BatchNorm statistics per rank)
        if (budget.Recipe)
        {
            // The recipe picks budget, rate, schedule, weight decay and augmentation from the architecture and the data.
            foreach (var k in new[] { "images", "lr", "schedule" }) parameters.Remove(k);
            parameters["recipe"] = $"the train command's, revision {TrainRecipe.Revision}";
        }
        return parameters;
    }

    internal override IReadOnlyList<StageOutput> Outputs(PipelineSpec spec) => [StageOutput.Named(ModelFile.DefaultName)];

    internal override async Task<MetricValues> RunAsync(StageRun run, string folder)
    {
        var (spec, budget) = (run.Spec, section(run.Spec));
        var options = new TrainOptions
        {
            Data = data.In(run), Arch = arch(spec), Out = folder, BatchSize = budget.Batch, Device = spec.Scoring.Compute.Device, Seed = run.Seed, Threads = spec.Scoring.Compute.Threads,
            Init = Init(spec) is { } from ? Path.Combine(run.Folder(from), ModelFile.DefaultName) : null, Overwrite = true,
            SoftTargets = Targets(spec)?.Folder.In(run),
        };
        if (!budget.Recipe)
            options = options with
            {
                Images = budget.Images, BaseLr = budget.Lr, Schedule = Enum.Parse<ScheduleKind>(budget.Schedule, ignoreCase: true),
                WeightDecay = 1e-4, Augment = true, // the pipelines' (not the train command's recipe: their stages' keys do not name these)
            };
        var result = budget.Ranks > 1
            ? await RankLauncher.TrainAsync(options, budget.Ranks, spec, run.Reporter<TrainProgress>(Report), run.Log, run.CancellationToken)
            : await Trainer.RunAsync(options, run.Reporter<TrainProgress>(Report), run.Log, run.CancellationToken);
        var eval = await EvaluateAsync(run, result.ModelPath);
        await File.WriteAllTextAsync(Path.Combine(folder, EvalFile), eval.ToJson(), run.CancellationToken);
        return new MetricValues { [metric] = eval.Top1, [PipelineMetrics.TrainingRate(metric)] = Math.Round(result.ImagesPerSecond, 1) };
    }

    /// <summary>A model's top-1 (and the rest of its evaluation) on the run's test set.</summary>
    public static async Task<EvalResult> EvaluateAsync(StageRun run, string modelPath)
    {
        var device = TorchDevice.Resolve(run.Spec.Scoring.Compute.Device);
        var (net, spec) = ModelFile.Load(modelPath, null, device);
        using (net)
            return await Evaluator.EvaluateAsync(net, spec, run.Test, device, run.Spec.EvalBatch, run.Spec.EvalWorkers, Path.GetFullPath(modelPath),
                run.CancellationToken);
    }

    private static void Report(RunningReport running, TrainProgress p) => running(p.TotalImages > 0 ? (double)p.ImagesSeen / p.TotalImages : null,
        p.ImagesPerSecond, StageRun.EtaOf(p.ImagesSeen, p.TotalImages, p.ImagesPerSecond), p.ImagesSeen,
        string.Create(CultureInfo.InvariantCulture, $"loss {p.Loss:F4}"));
}
