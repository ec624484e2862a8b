using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using SkiaSharp;
using Streaming.Core;
using Streaming.Core.Datasets;
using Streaming.Core.Selection;
using Streaming.Core.Decode;
using Streaming.Core.Loading;
using Streaming.Core.Plots;
using Streaming.Core.Shards;
using Streaming.Models.Compute;
using Streaming.Models.Evaluation;
using Streaming.Models.IO;
using Streaming.Models.Loading;
using Streaming.Models.Zoo;
using TorchSharp;
using static TorchSharp.torch;

namespace Streaming.Models.Training;

/// <summary>
/// Trains a classifier from image shards: SGD with momentum 0.9, linear scaling with warm-up, the paper's
/// pre-training and fine-tuning schedules or cosine, what is not given picked by <see cref="TrainRecipe"/>;
/// checkpoints that make a killed run continue exactly, metrics as JSON lines and curves as a PNG.
/// </summary>
public static class Trainer
{
    public const string MetricsFile = "metrics.jsonl";
    public const string ConfigFile = "config.json";
    public const string CurvesFile = "curves.png";
    public const string EvalFile = "eval.json";

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>Fills in every default, so the options say exactly what the run does.</summary>
    public static TrainOptions Resolve(TrainOptions o, DatasetManifest manifest, int imageSize)
    {
        if (o.Images is not null && o.Epochs is not null) throw new ArgumentException("give --images or --epochs, not both");
        if (o.BatchSize < 1) throw new ArgumentException("--batch must be at least 1");
        if (o.FreezeBackbone && o.Init is null) throw new ArgumentException("--freeze-backbone needs --init: a backbone to keep");
        long epochImages = manifest.Labeled;
        // What is not given comes from the recipe for this architecture and data size, and the log says which.
        var recipe = TrainRecipe.For(o.Arch, epochImages, fineTuning: o.Init is not null, frozenBackbone: o.FreezeBackbone);
        long images = o.Images ?? (o.Epochs is double epochs ? (long)Math.Round(epochs * epochImages) : recipe.Images);
        if (images < 1) throw new ArgumentException("the training budget must be at least one image");
        var schedule = o.Schedule ?? recipe.Schedule;
        double baseLr = o.BaseLr ?? recipe.BaseLr;
        double weightDecay = o.WeightDecay ?? recipe.WeightDecay;
        bool augment = o.Augment ?? recipe.Augment;
        var defaulted = new List<string>();
        if (o.Images is null && o.Epochs is null) defaulted.Add(string.Create(CultureInfo.InvariantCulture, $"--images {images}"));
        if (o.Schedule is null) defaulted.Add($"--schedule {schedule.ToString().ToLowerInvariant()}");
        if (o.BaseLr is null) defaulted.Add(string.Create(CultureInfo.InvariantCulture, $"--lr {baseLr:G4}"));
        if (o.WeightDecay is null) defaulted.Add(string.Create(CultureInfo.InvariantCulture, $"--weight-decay {weightDecay:G4}"));
        if (o.Augment is null) defaulted.Add(augment ? "--augment" : "--no-augment");
        return o with
        {
            WeightDecay = weightDecay,
            Augment = augment,
            RecipeNote = defaulted.Count == 0 ? null : $"defaults: {string.Join(" ", defaulted)} (the recipe for {recipe.Why}; a flag given wins)",
            Data = Path.GetFullPath(o.Data),
            Out = Path.GetFullPath(o.Out),
            Init = o.Init is null ? null : Path.GetFullPath(o.Init),
            EvalData = o.EvalData is null ? null : Path.GetFullPath(o.EvalData),
            Images = images,
            Epochs = null,
            Schedule = schedule,
            BaseLr = baseLr,
            WarmupImages = o.WarmupImages ?? images * 3 / 100,
            ImageSize = imageSize,
            Threads = o.Threads ?? Environment.ProcessorCount,
            CheckpointEvery = o.CheckpointEvery ?? Math.Max(epochImages, 10_000),
            EvalEvery = o.EvalEvery ?? Math.Max(epochImages, 10_000),
            LogEveryImages = o.LogEveryImages ?? Math.Max(o.BatchSize, images / 200),
        };
    }

    /// <summary>
    /// On --resume, what was left to defaults takes the values the run was started with (its config.json), not today's
    /// recipe: a run begun before the recipe changed still resumes.
    /// </summary>
    private static TrainOptions WithSavedSettings(TrainOptions o)
    {
        string config = Path.Combine(o.Out, ConfigFile);
        if (!o.Resume || !File.Exists(config)) return o;
        TrainOptions? saved;
        try
        {
            saved = JsonSerializer.Deserialize<TrainOptions>(File.ReadAllText(config));
        }
        catch (JsonException)
        {
            return o;
        }
        if (saved is null) return o;
        return o with
        {
            Images = o.Images ?? (o.Epochs is null ? saved.Images : null),
            Schedule = o.Schedule ?? saved.Schedule,
            BaseLr = o.BaseLr ?? saved.BaseLr,
            WeightDecay = o.WeightDecay ?? saved.WeightDecay,
            Augment = o.Augment ?? saved.Augment,
        };
    }

    /// <summary>The fields whose change would make a resumed run a different run.</summary>
    private static string Identity(TrainOptions o) => JsonSerializer.Serialize(new
    {
        o.Data, o.Arch, o.Images, o.BatchSize, o.BaseLr, o.Schedule, o.WarmupImages, o.Momentum, o.WeightDecay,
        o.Init, o.Seed, o.ImageSize, o.Augment, o.ShuffleBuffer, o.SoftTargets,
    }) + (o.FreezeBackbone ? " freeze-backbone" : ""); // (only when set: earlier runs' checkpoints keep their identity)

    /// <summary>
    /// A selection folder (D-hat from 'streaming select': selection.json + dhat.parquet) trains like an image
    /// dataset: its images are copied out of the unlabeled dataset it was scored from, once, into
    /// <c>images/</c> inside the selection folder, labeled with the class each was selected for
    /// (<see cref="SelectionImages.ToDatasetAsync"/>). Any other folder is returned as it is.
    /// </summary>
    public static async Task<string> SelectionAsDatasetAsync(string data, Action<string> log, CancellationToken cancellationToken)
    {
        if (File.Exists(Path.Combine(data, DatasetManifest.FileName)) || !File.Exists(Path.Combine(data, SelectionManifest.FileName))) return data;
        string images = Path.Combine(data, "images");
        await SelectionImages.ToDatasetAsync(data, images, log: log, cancellationToken: cancellationToken).ConfigureAwait(false);
        return images;
    }

    public static async Task<TrainResult> RunAsync(TrainOptions options, IProgress<TrainProgress>? progress = null, Action<string>? log = null,
        CancellationToken cancellationToken = default)
    {
        log ??= _ => { };
        options = options with { Data = await SelectionAsDatasetAsync(options.Data, log, cancellationToken).ConfigureAwait(false) };
        var manifest = DatasetManifest.Load(options.Data);
        if (manifest.Labeled == 0) throw new StreamingException($"{options.Data}: has no labeled images to train on");
        var first = await manifest.FirstImageAsync(options.Data, labeledOnly: true, cancellationToken).ConfigureAwait(false);
        int imageSize = options.ImageSize ?? DefaultImageSize(options.Arch, first.Width, first.Height);
        options = WithSavedSettings(options);
        var o = Resolve(options, manifest, imageSize);
        using var compute = await Kernels.AcquireAsync(o.Threads, cancellationToken: cancellationToken).ConfigureAwait(false);
        var device = TorchDevice.Resolve(o.Device);
        o = o with { Compute = Streaming.Models.Compute.Kernels.Current(o.Threads) };

        SoftTargets? soft = null;
        if (o.SoftTargets is not null)
        {
            soft = await Streaming.Core.Loading.SoftTargets.LoadAsync(o.SoftTargets, o.Data, cancellationToken).ConfigureAwait(false);
            log(string.Create(CultureInfo.InvariantCulture, $"soft targets: the teacher's top-{soft.TopP} probabilities of {soft.Count:N0} images, from {o.SoftTargets}"));
        }

        PrepareOutput(o);
        string? checkpoint = o.Resume ? Checkpoints.Latest(o.Out) : null;
        CheckpointState? state = checkpoint is null ? null : Checkpoints.ReadState(checkpoint);
        if (state is not null)
        {
            var saved = state.Config.Deserialize<TrainOptions>()!;
            if (Identity(saved) != Identity(o))
                throw new StreamingException($"{checkpoint}: was made with other settings ({Identity(saved)}); resume with the same options, or --overwrite to start again");
            if (state.Threads != o.Threads) log($"note: the checkpoint was made with {state.Threads} threads, this run uses {o.Threads}: results stay close but are no longer bit-identical to an uninterrupted run");
            else if (saved.Compute is { } before && before.KernelDifferences(o.Compute!) is { Count: > 0 } differences)
                log($"note: the checkpoint was made with other kernels ({string.Join("; ", differences)}): results stay close but are no longer bit-identical to an uninterrupted run");
        }
        else if (o.Resume)
        {
            log($"no checkpoint in {Checkpoints.Folder(o.Out)}; starting from the beginning");
        }

        // The model's spec: channels and normalization from the data, so evaluation and scoring decode the same way.
        int channels = options.Init is null ? first.Channels : 0;
        ModelSpec spec;
        nn.Module<Tensor, Tensor> model;
        if (o.Init is not null)
        {
            var (init, initSpec) = ModelFile.Load(o.Init);
            if (initSpec.Arch != o.Arch) throw new StreamingException($"--init {o.Init}: is a {initSpec.Arch}, not a {o.Arch}");
            if (initSpec.NumClasses != manifest.Classes.Count)
            {
                // Same body, new classifier: copy everything whose shape still fits.
                model = ModelZoo.Create(o.Arch, manifest.Classes.Count, initSpec.InChannels, (long)(o.Seed & long.MaxValue));
                var source = init.state_dict();
                var fitting = model.state_dict().Where(kv => source.TryGetValue(kv.Key, out var t) && t.shape.SequenceEqual(kv.Value.shape))
                    .ToDictionary(kv => kv.Key, kv => source[kv.Key]);
                using (no_grad()) foreach (var (k, t) in fitting) model.state_dict()[k].copy_(t);
                log($"--init: {initSpec.NumClasses} classes in the model, {manifest.Classes.Count} in the data: the classifier starts fresh ({model.state_dict().Count - fitting.Count} tensors)");
                init.Dispose();
            }
            else
            {
                model = init;
            }
            spec = initSpec with { NumClasses = manifest.Classes.Count, Classes = manifest.Classes, ImageSize = o.ImageSize!.Value };
        }
        else
        {
            var (mean, std) = await MeanStdAsync(o.Data, manifest, channels, o.ImageSize!.Value, cancellationToken).ConfigureAwait(false);
            spec = new ModelSpec(o.Arch, manifest.Classes.Count, channels, o.ImageSize!.Value, mean, std, manifest.Classes);
            model = ModelZoo.Create(o.Arch, spec.NumClasses, spec.InChannels, (long)(o.Seed & long.MaxValue));
        }
        model.to(device);
        MemoryFormat.Apply(model);
        if (o.FreezeBackbone) log(FreezeBackbone(model));
        using var sgd = new Sgd(model, o.Momentum, o.WeightDecay!.Value);
        if (checkpoint is not null) Checkpoints.Restore(checkpoint, model, sgd, device);

        var loader = new BatchLoader(o.Data, new LoaderOptions
        {
            Preprocess = spec.Preprocess(),
            Augment = o.Augment!.Value ? AugmentationOptions.Default(spec.ImageSize) : AugmentationOptions.None,
            Seed = o.Seed,
            BatchSize = o.BatchSize,
            Workers = o.DecodeWorkers,
            ShuffleBuffer = o.ShuffleBuffer,
            SoftTargets = soft,
        });
        long batch = o.BatchSize, totalImages = o.Images!.Value;
        long totalSteps = (totalImages + batch - 1) / batch;
        long stepsPerEpoch = loader.BatchesPerEpoch;
        var schedule = new LrSchedule(o.Schedule!.Value, LrSchedule.Scaled(o.BaseLr!.Value, o.BatchSize), totalImages, o.WarmupImages!.Value);
        AtomicFile.WriteAllText(Path.Combine(o.Out, ConfigFile), JsonSerializer.Serialize(o, Json));
        var configElement = JsonSerializer.SerializeToElement(o);

        long step = state?.Step ?? 0;
        var metricsPath = Path.Combine(o.Out, MetricsFile);
        TrimMetrics(metricsPath, step * batch);
        await using var metrics = new StreamWriter(metricsPath, append: true) { AutoFlush = true };
        log(string.Create(CultureInfo.InvariantCulture,
            $"training {o.Arch} on {manifest.Labeled:N0} images ({spec.NumClasses} classes, {spec.InChannels}x{spec.ImageSize}x{spec.ImageSize}) for {totalImages:N0} images = {totalSteps:N0} steps of {batch}; {schedule.Kind} schedule, peak lr {schedule.PeakLr:G4}; {TorchDevice.Describe()}; kernels: {o.Compute}"));
        if (o.RecipeNote is string note) log(note);
        if (step > 0) log($"resumed from {checkpoint} at step {step:N0}");

        var clock = Stopwatch.StartNew();
        long startStep = step;
        double ema = double.NaN, lastLoss = double.NaN;
        double? lastTop1 = null;
        EvalResult? lastEval = null;
        var lastReport = TimeSpan.Zero;
        Train(model, o.FreezeBackbone);
        while (step < totalSteps)
        {
            long epoch = step / stepsPerEpoch;
            await foreach (var b in loader.ReadEpochAsync(epoch, step % stepsPerEpoch, cancellationToken).ConfigureAwait(false))
            {
                double lr = schedule.At(step * batch);
                using (b) lastLoss = Step(model, sgd, b, device, lr);
                if (!double.IsFinite(lastLoss))
                    throw new StreamingException($"training diverged at step {step} (loss {lastLoss}); lower --lr");
                ema = double.IsNaN(ema) ? lastLoss : 0.98 * ema + 0.02 * lastLoss;
                step++;
                long seen = step * batch;
                double rate = (step - startStep) * batch / Math.Max(1e-9, clock.Elapsed.TotalSeconds);
                if (Crossed(seen, batch, o.LogEveryImages!.Value) || step == totalSteps)
                    await metrics.WriteLineAsync(JsonSerializer.Serialize(new { type = "train", step, images = seen, epoch, loss = Math.Round(ema, 5), lr, images_per_s = Math.Round(rate, 1) })).ConfigureAwait(false);
                if (o.EvalData is not null && (Crossed(seen, batch, o.EvalEvery!.Value) || step == totalSteps))
                {
                    lastEval = await Evaluator.EvaluateAsync(model, spec, o.EvalData, device, 256, o.DecodeWorkers, o.Out, cancellationToken).ConfigureAwait(false);
                    lastTop1 = lastEval.Top1;
                    await metrics.WriteLineAsync(JsonSerializer.Serialize(new { type = "eval", step, images = seen, top1 = lastEval.Top1, top5 = lastEval.Top5, loss = lastEval.Loss })).ConfigureAwait(false);
                    Train(model, o.FreezeBackbone);
                }
                if (Crossed(seen, batch, o.CheckpointEvery!.Value) || step == totalSteps)
                    Checkpoints.Save(o.Out, model, spec, sgd, new CheckpointState(step, seen, step / stepsPerEpoch, step % stepsPerEpoch, totalSteps, o.Threads!.Value, configElement));
                if (progress is not null && (clock.Elapsed - lastReport > TimeSpan.FromMilliseconds(500) || step == totalSteps))
                {
                    lastReport = clock.Elapsed;
                    progress.Report(new TrainProgress(step, totalSteps, seen, totalImages, ema, lr, rate, lastTop1));
                }
                if (step >= totalSteps) break;
            }
        }

        string modelPath = Path.Combine(o.Out, ModelFile.DefaultName);
        ModelFile.Save(modelPath, model, spec);
        if (lastEval is not null) await AtomicFile.WriteAllTextAsync(Path.Combine(o.Out, EvalFile), lastEval.ToJson(), cancellationToken).ConfigureAwait(false);
        DrawCurves(metricsPath, Path.Combine(o.Out, CurvesFile), o.Arch);
        double overall = (step - startStep) * batch / Math.Max(1e-9, clock.Elapsed.TotalSeconds);
        return new TrainResult(modelPath, step, step * batch, ema, clock.Elapsed, overall, lastEval, startStep > 0);
    }

    /// <summary>Training mode; with a frozen backbone, every module below the root goes back to evaluation mode, so no BatchNorm statistic moves (the head, a linear layer, computes the same in either mode).</summary>
    private static void Train(nn.Module<Tensor, Tensor> model, bool freezeBackbone)
    {
        model.train();
        if (!freezeBackbone) return;
        var head = ((IFeatureModel)model).Head;
        foreach (var m in model.modules())
            if (!ReferenceEquals(m, head) && m is not IFeatureModel) m.eval();
    }

    /// <summary>Only the head's weights keep requires_grad (so SGD updates nothing else); returns a line saying so.</summary>
    private static string FreezeBackbone(nn.Module<Tensor, Tensor> model)
    {
        if (model is not IFeatureModel features) throw new StreamingException("--freeze-backbone: this model has no separate last layer");
        var head = features.Head.parameters().ToHashSet(ReferenceEqualityComparer.Instance);
        long all = 0, trained = 0;
        foreach (var p in model.parameters())
        {
            all += p.numel();
            bool train = head.Contains(p);
            p.requires_grad = train;
            if (train) trained += p.numel();
        }
        return string.Create(CultureInfo.InvariantCulture, $"--freeze-backbone: training the last layer only ({trained:N0} of {all:N0} parameters); BatchNorm statistics fixed");
    }

    private static bool Crossed(long seen, long batch, long every) => every > 0 && seen / every > (seen - batch) / every;

    private static void PrepareOutput(TrainOptions o)
    {
        if (o.Overwrite && Directory.Exists(o.Out))
        {
            foreach (var f in Directory.EnumerateFiles(o.Out)) File.Delete(f);
            if (Directory.Exists(Checkpoints.Folder(o.Out))) Directory.Delete(Checkpoints.Folder(o.Out), true);
        }
        if (!o.Resume && Checkpoints.Latest(o.Out) is not null)
            throw new StreamingException($"{o.Out}: holds checkpoints of an earlier run; pass --resume to continue it or --overwrite to start again");
        Directory.CreateDirectory(o.Out);
    }

    /// <summary>Drops metric lines past the checkpoint a run resumes from, so nothing is counted twice.</summary>
    private static void TrimMetrics(string path, long imagesSeen)
    {
        if (!File.Exists(path)) return;
        var keep = File.ReadAllLines(path).Where(line =>
        {
            try
            {
                using var doc = JsonDocument.Parse(line);
                return doc.RootElement.GetProperty("images").GetInt64() <= imagesSeen;
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                return false; // a line cut short by a kill
            }
        }).ToList();
        Streaming.Core.AtomicFile.WriteAllText(path, string.Concat(keep.Select(l => l + "\n")));
    }

    /// <summary>
    /// The input size when none is given: the architecture's native size (224 for the torchvision models), else the
    /// data's own up to 64 px, else 64.
    /// </summary>
    public static int DefaultImageSize(string arch, int width, int height) =>
        ModelZoo.NativeInputSize(arch) ?? (Math.Max(width, height) is > 0 and <= 64 ? Math.Max(width, height) : 64);

    /// <summary>
    /// One SGD step on a batch: forward, cross-entropy (against the labels, or against the soft targets when the
    /// batch has them), backward, update. Returns the batch's loss.
    /// </summary>
    public static float Step(nn.Module<Tensor, Tensor> model, Sgd sgd, Batch b, Device device, double lr)
    {
        Kernels.OnThisThread();
        using var scope = NewDisposeScope();
        var x = MemoryFormat.Input(b.Images.to(device));
        var logits = model.forward(x);
        var loss = b.Targets is { } targets
            ? -(targets.to(device) * nn.functional.log_softmax(logits, 1)).sum(1).mean()
            : nn.functional.cross_entropy(logits, b.Labels.to(device));
        sgd.ZeroGrad();
        loss.backward();
        sgd.Step(lr);
        return loss.item<float>();
    }

    /// <summary>Per-channel mean and std of the first (up to) 2,000 labeled images, at the model's input size.</summary>
    public static async Task<(float[] Mean, float[] Std)> MeanStdAsync(string data, DatasetManifest manifest, int channels, int size, CancellationToken ct)
    {
        var p = new PreprocessOptions(size, size, channels, size <= 64 ? ResizeMode.Stretch : ResizeMode.ShorterSideCenterCrop,
            Enumerable.Repeat(0f, channels).ToArray(), Enumerable.Repeat(1f, channels).ToArray());
        var buffer = new float[p.TensorLength];
        var sum = new double[channels];
        var sq = new double[channels];
        long n = 0;
        int plane = size * size;
        foreach (var shard in manifest.ShardPaths(data))
        {
            await foreach (var r in ImageShardReader.ReadAsync(shard, ct).ConfigureAwait(false))
            {
                if (r.Label is null) continue;
                ImageDecoder.DecodeToTensor(r.Image, p, buffer);
                for (int c = 0; c < channels; c++)
                    foreach (var v in buffer.AsSpan(c * plane, plane)) { sum[c] += v; sq[c] += (double)v * v; }
                n += plane;
                if (n >= 2000L * plane) break;
            }
            if (n >= 2000L * plane) break;
        }
        var mean = sum.Select(s => (float)(s / n)).ToArray();
        var std = sq.Select((s, c) => (float)Math.Max(1e-3, Math.Sqrt(Math.Max(0, s / n - (double)mean[c] * mean[c])))).ToArray();
        return (mean, std);
    }

    /// <summary>Training loss and evaluation accuracy against images processed.</summary>
    public static void DrawCurves(string metricsPath, string pngPath, string title)
    {
        var train = new List<(double, double)>();
        var top1 = new List<(double, double)>();
        var lrs = new List<(double, double)>();
        foreach (var line in File.ReadLines(metricsPath))
        {
            using var doc = JsonDocument.Parse(line);
            var e = doc.RootElement;
            double images = e.GetProperty("images").GetInt64();
            if (e.GetProperty("type").GetString() == "train")
            {
                train.Add((images, e.GetProperty("loss").GetDouble()));
                lrs.Add((images, e.GetProperty("lr").GetDouble()));
            }
            else top1.Add((images, 100 * e.GetProperty("top1").GetDouble()));
        }
        var panels = new List<Panel>
        {
            new($"{title}: training loss", "images processed", "cross-entropy (smoothed)", [new Series("train loss", train, LinePlot.Palette[0])], LogY: true),
            new("learning rate", "images processed", "lr", [new Series("lr", lrs, LinePlot.Palette[2])]),
        };
        if (top1.Count > 0) panels.Insert(1, new Panel("evaluation accuracy", "images processed", "top-1 (%)", [new Series("top-1", top1, LinePlot.Palette[1])]));
        LinePlot.Save(pngPath, panels);
    }
}
