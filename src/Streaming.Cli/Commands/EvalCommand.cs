using System.CommandLine;
using Streaming.Cli.Shared;
using Streaming.Core.Options;
using Streaming.Models;
using Streaming.Models.Evaluation;
using Streaming.Models.IO;

namespace Streaming.Cli.Commands;

/// <summary><c>streaming eval</c>: top-1, top-5, per-class accuracy and the confusion matrix of a model on a dataset.</summary>
public static class EvalCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "model.safetensors (or a run folder), or a PyTorch state dict with --arch", Required = true };
        var data = new Option<string>("--data", "-d") { Description = "Labeled dataset folder", Required = true };
        var output = new Option<string?>("--out", "-o") { Description = "Write the JSON report here instead of stdout (the table still goes to the console)" };
        var batch = KnobOption.Create<int>(Knobs.EvalBatch, aliases: "-b");
        var workers = KnobOption.Create<int>(Knobs.EvalWorkers);
        var arch = new Option<string?>("--arch") { Description = "For a PyTorch state dict: its architecture" };
        var classes = new Option<int?>("--num-classes") { Description = "For a PyTorch state dict: its class count (default: the dataset's)" };
        var channels = new Option<int>("--in-channels") { Description = "For a PyTorch state dict: input channels", DefaultValueFactory = _ => 3 };
        var size = new Option<int>("--image-size") { Description = "For a PyTorch state dict: input size", DefaultValueFactory = _ => 224 };
        var compute = new ComputeFlags();
        var json = new Option<bool>("--json") { Description = "The report as one JSON document on stdout, the table on stderr (also with --out)" };
        var command = new Command("eval", "Evaluate a model on a labeled dataset: top-1, top-5, per-class accuracy, confusion matrix.")
        {
            model, data, output, batch, workers, arch, classes, channels, size, json,
        };
        compute.AddTo(command);
        command.SetAction(async (parse, cancellationToken) =>
        {
            compute.Apply(parse);
            string dataDir = parse.GetValue(data)!;
            var manifest = Streaming.Core.Datasets.DatasetManifest.Load(dataDir);
            ModelSpec? spec = null;
            if (parse.GetValue(arch) is string a)
            {
                int c = parse.GetValue(channels);
                // The defaults PreprocessOptions uses: ImageNet's statistics for RGB, 0.5/0.5 for grayscale.
                var defaults = new Streaming.Core.Decode.PreprocessOptions(1, 1, c);
                spec = new ModelSpec(a, parse.GetValue(classes) ?? manifest.Classes.Count, c, parse.GetValue(size), defaults.Mean, defaults.Std, manifest.Classes);
            }
            var dev = TorchDevice.Resolve(parse.GetValue(compute.Device)!);
            string path = parse.GetValue(model)!;
            var (net, resolved) = ModelFile.Load(path, spec, dev);
            using (net)
            {
                var result = await Evaluator.EvaluateAsync(net, resolved, dataDir, dev, parse.GetValue(batch), parse.GetValue(workers), Path.GetFullPath(ModelFile.Resolve(path)), cancellationToken);
                if (parse.GetValue(output) is string outFile)
                {
                    await Streaming.Core.AtomicFile.WriteAllTextAsync(outFile, result.ToJson(), cancellationToken);
                    var table = parse.GetValue(json) ? Console.Error : Console.Out;
                    table.Write(result.ToTable());
                    table.WriteLine($"report: {outFile}");
                    if (parse.GetValue(json)) Console.Write(result.ToJson());
                }
                else
                {
                    Console.Error.Write(result.ToTable());
                    Console.Write(result.ToJson());
                }
            }
            return (int)ExitCode.Ok;
        });
        return command;
    }
}
