using System.CommandLine;
using System.Globalization;
using Streaming.Cli.Shared;
using Streaming.Models.Training;
using Streaming.Models.Loading;

namespace Streaming.Cli.Commands;

/// <summary><c>streaming train</c>: a classifier from image shards, with the paper's recipe and exact resume.</summary>
public static class TrainCommand
{
    public static Command Create()
    {
        var data = new Option<string>("--data", "-d") { Description = "Labeled dataset folder (image shards) to train on, or a selection folder (D-hat) from 'streaming select'", Required = true };
        var arch = new Option<string>("--arch", "-a") { Description = "Architecture: resnet18/34/50, resnext50_32x4d, resnext101_32x4d/32x8d/32x16d, resnet20/32/56[:wN], cnn-small[:wN], cnn-plain", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Run folder: model.safetensors, checkpoints/, metrics.jsonl, curves.png", Required = true };
        var images = new Option<long?>("--images") { Description = "Budget in images processed (the paper's #iter); default: the recipe's (70 epochs within 70,000..290,000 images for the small models; 30 epochs for ImageNet models and fine-tuning)" };
        var epochs = new Option<double?>("--epochs") { Description = "Budget in epochs, instead of --images" };
        var batch = new Option<int>("--batch", "-b") { Description = "Batch size", DefaultValueFactory = _ => 128 };
        var lr = new Option<double?>("--lr") { Description = "Base learning rate at batch 256; the peak is lr x batch / 256 (default: 0.2 for the small models, 0.1 for ImageNet models, 0.00025 when fine-tuning)" };
        var schedule = new Option<ScheduleKind?>("--schedule") { Description = "pretrain (halve 13 times), finetune (three 0.1 drops), cosine or constant (default: cosine, or finetune with --init)" };
        var warmup = new Option<long?>("--warmup-images") { Description = "Linear warm-up length in images (default 3% of the budget)" };
        var momentum = new Option<double>("--momentum") { Description = "SGD momentum", DefaultValueFactory = _ => 0.9 };
        var wd = new Option<double?>("--weight-decay") { Description = "SGD weight decay (default: 5e-4 for the small models up to 10,000 labeled images; 1e-4 above, for ImageNet models and with --init)" };
        var init = new Option<string?>("--init") { Description = "Start from this model (fine-tuning): a model.safetensors or a run folder" };
        var freeze = new Option<bool>("--freeze-backbone") { Description = "With --init: train the last layer only (fc-only transfer); every other weight and BatchNorm statistic stays as it is" };
        var seed = new Option<ulong>("--seed") { Description = "Seed of initialisation, data order and augmentation", DefaultValueFactory = _ => 0UL };
        var size = new Option<int?>("--image-size") { Description = "Input size (default: the data's own for small models, 224 for ImageNet models)" };
        var noAugment = new Option<bool>("--no-augment") { Description = "Train without crops and flips (default: without them for the small models above 10,000 labeled images; with them otherwise)" };
        var augment = new Option<bool>("--augment") { Description = "Train with random crops and flips, whatever the data size" };
        var softTargets = new Option<string?>("--soft-targets") { Description = "Train on soft targets: the teacher's top-P' probabilities (renormalized) from this scoring folder (the output of 'score'), instead of the labels" };
        var checkpointEvery = new Option<long?>("--checkpoint-every") { Description = "Checkpoint every this many images (default: each epoch, at least 10,000 images apart)" };
        var evalData = new Option<string?>("--eval-data") { Description = "Labeled dataset to evaluate on during and after training" };
        var evalEvery = new Option<long?>("--eval-every") { Description = "Evaluate every this many images (default: each epoch, at least 10,000 images apart)" };
        var resume = new Option<bool>("--resume") { Description = "Continue from the last checkpoint in --out" };
        var overwrite = new Option<bool>("--overwrite") { Description = "Discard an earlier run in --out" };
        var workers = new Option<int>("--decode-workers") { Description = "Parallel decode + augment workers", DefaultValueFactory = _ => 1 };
        var compute = new ComputeFlags();

        var command = new Command("train", "Train a classifier on image shards (teacher on D, student on D-hat, fine-tuning on D), with resumable checkpoints.")
        {
            data, arch, output, images, epochs, batch, lr, schedule, warmup, momentum, wd, init, freeze, seed, size, noAugment, augment, softTargets,
            checkpointEvery, evalData, evalEvery, resume, overwrite, workers,
        };
        compute.AddTo(command);
        command.SetAction(async (parse, cancellationToken) =>
        {
            // Under mpirun or srun, one rank of a data-parallel job: its threads default to this host's cores over its ranks.
            var world = Streaming.Models.Distributed.WorldInfo.FromEnvironment();
            int threads = world.IsDistributed && parse.GetValue(compute.Threads) == 0 ? world.DefaultThreads : compute.ThreadCount(parse);
            compute.Apply(parse, threads);
            var options = new TrainOptions
            {
                Data = parse.GetValue(data)!,
                Arch = parse.GetValue(arch)!,
                Out = parse.GetValue(output)!,
                Images = parse.GetValue(images),
                Epochs = parse.GetValue(epochs),
                BatchSize = parse.GetValue(batch),
                BaseLr = parse.GetValue(lr),
                Schedule = parse.GetValue(schedule),
                WarmupImages = parse.GetValue(warmup),
                Momentum = parse.GetValue(momentum),
                WeightDecay = parse.GetValue(wd),
                Init = parse.GetValue(init),
                FreezeBackbone = parse.GetValue(freeze),
                Device = world.DeviceFor(parse.GetValue(compute.Device)!),
                Seed = parse.GetValue(seed),
                ImageSize = parse.GetValue(size),
                Augment = parse.GetValue(noAugment) && parse.GetValue(augment) ? throw new ArgumentException("give --augment or --no-augment, not both")
                    : parse.GetValue(noAugment) ? false : parse.GetValue(augment) ? true : null,
                SoftTargets = parse.GetValue(softTargets),
                CheckpointEvery = parse.GetValue(checkpointEvery),
                EvalData = parse.GetValue(evalData),
                EvalEvery = parse.GetValue(evalEvery),
                Resume = parse.GetValue(resume),
                Overwrite = parse.GetValue(overwrite),
                Threads = threads,
                DecodeWorkers = parse.GetValue(workers),
            };
            if (options.DecodeWorkers < 1) throw new ArgumentException("--decode-workers must be at least 1");
            if (world.IsDistributed)
                return await DistributedTraining.RunAsync(world, options, (o, group) => TrainAsync(o, group, world.Rank == 0, cancellationToken));
            var result = await TrainAsync(options, SingleProcess.Instance, true, cancellationToken);
            Print(result);
            return (int)ExitCode.Ok;
        });
        return command;
    }

    /// <summary>Trains, with a live progress line and the log on the console (a rank other than 0 shows neither).</summary>
    private static async Task<TrainResult> TrainAsync(TrainOptions options, IProcessGroup group, bool speaks, CancellationToken cancellationToken)
    {
        var console = new ConsoleProgress();
        var inv = CultureInfo.InvariantCulture;
        var progress = speaks ? new Progress<TrainProgress>(p => console.Report(string.Create(inv,
            $"  step {p.Step:N0}/{p.TotalSteps:N0}  {100.0 * p.ImagesSeen / p.TotalImages,5:F1}%  loss {p.Loss:F4}  lr {p.Lr:G3}  {p.ImagesPerSecond:N0} images/s  ETA {Eta(p.Eta)}{(p.LastEvalTop1 is double t ? $"  eval top-1 {t:P2}" : "")}"))) : null;
        try
        {
            var result = await Trainer.RunAsync(options, progress, line => { console.Done(); Console.Error.WriteLine(line); }, group, cancellationToken);
            if (speaks && group.Size > 1) Print(result);
            return result;
        }
        finally
        {
            console.Done();
        }
    }

    private static void Print(TrainResult result)
    {
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Create(inv,
                $"trained {result.Steps:N0} steps ({result.ImagesSeen:N0} images) in {result.Elapsed.TotalMinutes:F1} min, {result.ImagesPerSecond:N0} images/s; final loss {result.FinalLoss:F4}"));
            if (result.Eval is { } e) Console.WriteLine(string.Create(inv, $"eval on {e.Data}: top-1 {e.Top1:P2}{(e.Top5 is double t5 ? $", top-5 {t5:P2}" : "")}"));
        Console.WriteLine($"model: {result.ModelPath}");
    }

    private static string Eta(TimeSpan? eta) => eta is { } t ? (t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes:D2}m" : $"{t.Minutes}m{t.Seconds:D2}s") : "?";
}
