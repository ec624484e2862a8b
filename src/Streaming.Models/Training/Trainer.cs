using Streaming.Core.Datasets;
using Streaming.Models.Compute;
using Streaming.Models.Loading;
using Streaming.Models.Zoo;
using static TorchSharp.torch;

namespace Streaming.Models.Training;

/// <summary>
/// Trains a classifier from image shards: SGD with momentum 0.9, linear scaling with warm-up, the paper's
/// pre-training and fine-tuning schedules or cosine, what is not given picked by <see cref="TrainRecipe"/>;
/// checkpoints that make a killed run continue exactly, metrics as JSON lines and curves as a PNG.
/// </summary>
/// <remarks>
/// A run in pieces: <see cref="TrainingData"/> (the images, a D-hat selection's included), <see cref="TrainDefaults"/>
/// (the options resolved), <see cref="RunFolder"/> (every file it writes), <see cref="ResumePoint"/>,
/// <see cref="ModelSetup"/>, then <see cref="TrainingLoop"/> over <see cref="TrainStep"/>. <see cref="IProcessGroup"/>
/// is where data-parallel training plugs in.
/// </remarks>
public static class Trainer
{
    /// <summary>A run's metrics: one JSON line a logged step or evaluation.</summary>
    public const string MetricsFile = "metrics.jsonl";
    /// <summary>A run's resolved options.</summary>
    public const string ConfigFile = "config.json";
    /// <summary>A run's training curves.</summary>
    public const string CurvesFile = "curves.png";
    /// <summary>A run's last evaluation.</summary>
    public const string EvalFile = "eval.json";

    /// <summary>Trains as <paramref name="options"/> say, in this process alone.</summary>
    public static Task<TrainResult> RunAsync(TrainOptions options, IProgress<TrainProgress>? progress = null, Action<string>? log = null,
        CancellationToken cancellationToken = default) =>
        RunAsync(options, progress, log, SingleProcess.Instance, cancellationToken);

    /// <summary>
    /// Trains as <paramref name="options"/> say, as one of the processes of <paramref name="group"/>: rank 0 logs,
    /// reports progress and writes the run's files; the others train alongside it, silently, and their result names
    /// rank 0's model file.
    /// </summary>
    public static async Task<TrainResult> RunAsync(TrainOptions options, IProgress<TrainProgress>? progress, Action<string>? log, IProcessGroup group,
        CancellationToken cancellationToken = default)
    {
        // Rank 0 alone speaks and writes files (RunFolder is the gate): the other ranks would only say it again.
        bool root = group.Rank == 0;
        log = root ? log ?? (_ => { }) : _ => { };
        if (!root) progress = null;
        var (data, o) = await SetUpAsync(options, group, log, cancellationToken).ConfigureAwait(false);
        using var compute = await Kernels.AcquireAsync(o.Threads, cancellationToken: cancellationToken).ConfigureAwait(false);
        var device = TorchDevice.Resolve(o.Device);
        o = o with { Compute = Kernels.Current(o.Threads) };
        group.Agree(DistributedRun.Identity(o, data));
        var soft = await group.AllOrNoneAsync("reading the soft targets", () => TrainingData.SoftTargetsAsync(o, log, cancellationToken)).ConfigureAwait(false);

        await using var folder = await group.AllOrNoneAsync("preparing the run folder", () => Task.FromResult(RunFolder.Prepare(o, writes: root))).ConfigureAwait(false);
        // Rank 0 reads the checkpoint, if any; the others learn its step, and its state comes with the broadcast.
        var resume = await group.AllOrNoneAsync("finding the checkpoint", () => Task.FromResult(root ? ResumePoint.Find(o, log) : ResumePoint.Start)).ConfigureAwait(false);
        resume = resume.At(group.Broadcast(resume.Step));
        var (model, spec) = await ModelSetup.CreateAsync(o, data, device, log, cancellationToken).ConfigureAwait(false);
        using var sgd = new Sgd(model, o.Momentum, o.WeightDecay!.Value);
        resume.Restore(model, sgd, device);
        group.BroadcastState(model, sgd); // every rank starts where rank 0 does, resumed or new
        var loop = new TrainingLoop(o, data, model, spec, sgd, device, soft, group, folder, log);
        return await loop.RunAsync(resume, progress, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The data and the resolved options, on every rank: rank 0 first prepares what the others read (a D-hat's images),
    /// then every rank opens the data. Each step succeeds on every rank or fails on all of them, with one message.
    /// </summary>
    private static async Task<(TrainingData Data, TrainOptions Options)> SetUpAsync(TrainOptions options, IProcessGroup group, Action<string> log,
        CancellationToken cancellationToken)
    {
        bool root = group.Rank == 0;
        var prepared = await group.AllOrNoneAsync("preparing the data", async () =>
            root ? await TrainingData.OpenAsync(options.Data, writes: true, log, cancellationToken).ConfigureAwait(false) : null).ConfigureAwait(false);
        var data = await group.AllOrNoneAsync("reading the data", () =>
            prepared is not null ? Task.FromResult(prepared) : TrainingData.OpenAsync(options.Data, writes: false, log, cancellationToken)).ConfigureAwait(false);
        options = options with { Data = data.Folder };
        int imageSize = options.ImageSize ?? DefaultImageSize(options.Arch, data.Width, data.Height);
        var o = TrainDefaults.Resolve(TrainDefaults.WithSavedSettings(options), data.Manifest, imageSize);
        return (data, DistributedRun.Describe(o, group, data));
    }

    /// <summary>Fills in every default, so the options say exactly what the run does.</summary>
    public static TrainOptions Resolve(TrainOptions o, DatasetManifest manifest, int imageSize) => TrainDefaults.Resolve(o, manifest, imageSize);

    /// <summary>
    /// The input size when none is given: the architecture's native size (224 for the torchvision models), else the
    /// data's own up to 64 px, else 64.
    /// </summary>
    public static int DefaultImageSize(string arch, int width, int height) =>
        ModelZoo.NativeInputSize(arch) ?? (Math.Max(width, height) is > 0 and <= 64 ? Math.Max(width, height) : 64);

    /// <summary>
    /// One SGD step on a batch, as a run takes it in one process: forward, cross-entropy (against the labels, or against
    /// the soft targets when the batch has them), backward, update. Returns the batch's loss.
    /// </summary>
    public static float Step(nn.Module<Tensor, Tensor> model, Sgd sgd, Batch b, Device device, double lr) =>
        new TrainStep(model, sgd, device, SingleProcess.Instance).Run(b, lr);

    /// <summary>Per-channel mean and std of the first (up to) 2,000 labeled images, at the model's input size.</summary>
    public static Task<(float[] Mean, float[] Std)> MeanStdAsync(string data, DatasetManifest manifest, int channels, int size, CancellationToken ct) =>
        NormalizationStats.MeanStdAsync(data, manifest, channels, size, ct);

    /// <summary>Training loss and evaluation accuracy against images processed.</summary>
    public static void DrawCurves(string metricsPath, string pngPath, string title) => TrainingCurves.Draw(metricsPath, pngPath, title);
}
