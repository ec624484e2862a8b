using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Streaming.Cli.Shared;
using Streaming.Core.Options;
using Streaming.Core.Shards;
using Streaming.Engine.Dedup;
using Streaming.Models;
using Streaming.Models.Evaluation;
using Streaming.Models.IO;

namespace Streaming.Cli.Commands;

/// <summary><c>streaming dedup</c>: the images of U that duplicate an evaluation set's, found and explained.</summary>
public static class DedupCommand
{
    public static Command Create()
    {
        var data = new Option<string>("--data", "-d") { Description = "The dataset to check (U): a dataset folder", Required = true };
        var against = new Option<string[]>("--against") { Description = "An evaluation set it must not overlap (repeatable): a dataset folder", Required = true, AllowMultipleArgumentsPerToken = false };
        var output = new Option<string>("--out", "-o") { Description = "Folder for duplicates.parquet, duplicates.png and summary.json", Required = true };
        var model = new Option<string?>("--model", "-m") { Description = "Also find near-duplicates by this model's penultimate features (cosine); for example the teacher" };
        var hamming = new Option<int>("--max-hamming") { Description = "The largest dHash distance (bits of 256) at which an image is a candidate perceptual near-duplicate; its cells then decide (--max-cell-rms)", DefaultValueFactory = _ => DedupOptions.DefaultMaxHamming };
        var cellRms = new Option<double>("--max-cell-rms") { Description = "The largest RMS (levels of 255) between a candidate's 17 x 16 luma cells and the image's that counts as a perceptual near-duplicate", DefaultValueFactory = _ => DedupOptions.DefaultMaxCellRms };
        var cosine = new Option<double>("--min-cosine") { Description = "The smallest feature cosine that counts as an embedding near-duplicate (with --model)", DefaultValueFactory = _ => DedupOptions.DefaultMinCosine };
        var batch = new Option<int>("--batch", "-b") { Description = "Batch size for the features", DefaultValueFactory = _ => 512 };
        var json = new Option<bool>("--json") { Description = "summary.json on stdout, the table on stderr" };
        var compute = new ComputeFlags();
        var command = new Command("dedup", "Find the images of a dataset that duplicate an evaluation set's: exact (bytes, pixels), perceptual (dHash) and, with --model, by embedding.")
        {
            data, against, output, model, hamming, cellRms, cosine, batch, json,
        };
        compute.AddTo(command);
        command.SetAction(async (parse, cancellationToken) =>
        {
            compute.Apply(parse);
            var console = new ConsoleProgress(TimeSpan.FromSeconds(10));
            DedupSummary summary;
            try
            {
                (summary, _) = await Deduplicator.RunAsync(new DedupOptions
                {
                    Data = parse.GetValue(data)!, Against = parse.GetValue(against)!, Out = parse.GetValue(output)!, Model = parse.GetValue(model),
                    MaxHamming = parse.GetValue(hamming), MaxCellRms = parse.GetValue(cellRms), MinCosine = parse.GetValue(cosine), Threads = compute.ThreadCount(parse),
                    Device = parse.GetValue(compute.Device)!, BatchSize = parse.GetValue(batch),
                }, line => { console.Done(); Console.Error.WriteLine(line); }, new Progress<string>(console.Report), cancellationToken);
            }
            finally
            {
                console.Done();
            }
            var table = parse.GetValue(json) ? Console.Error : Console.Out;
            table.Write(Table(summary, parse.GetValue(output)!));
            if (parse.GetValue(json)) Console.Write(File.ReadAllText(Path.Combine(parse.GetValue(output)!, Deduplicator.SummaryFile)));
            return (int)ExitCode.Ok;
        });
        return command;
    }

    internal static string Table(DedupSummary s, string output)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new System.Text.StringBuilder();
        sb.AppendLine(string.Create(inv, $"{Path.GetFileName(s.Data)} ({s.Images:N0} images) against {string.Join(", ", s.Against.Select(a => $"{a.Name} ({a.Images:N0})"))}"));
        sb.AppendLine(string.Create(inv, $"{"kind",-14} {"images",8}  rule"));
        foreach (var (kind, n) in s.Kinds)
        {
            string rule = kind switch
            {
                "exact_bytes" => "the same file (SHA-256)",
                "exact_pixels" => "the same decoded pixels, another file",
                "perceptual" => string.Create(inv, $"dHash within {s.MaxHamming} bits of 256, 17 x 16 cells within RMS {s.MaxCellRms:0.##}"),
                _ => string.Create(inv, $"feature cosine at least {s.MinCosine:0.####} ({Path.GetFileName(Path.GetDirectoryName(s.Model ?? "") ?? "")})"),
            };
            sb.AppendLine(string.Create(inv, $"{kind,-14} {n,8:N0}  {rule}"));
        }
        sb.AppendLine(string.Create(inv, $"{"total",-14} {s.Duplicates,8:N0}  {(s.Images == 0 ? 0 : 100.0 * s.Duplicates / s.Images):0.###}% of the images"));
        sb.AppendLine(string.Create(inv, $"hashing {s.HashImagesPerSecond:N0} images/s; {(s.FeaturesSeconds is double f ? $"features {f:F1} s; " : "")}search {s.SearchSeconds:F1} s; {s.Seconds:F1} s in all"));
        sb.AppendLine($"-> {Path.Combine(output, Deduplicator.DuplicatesFile)}, {Path.Combine(output, Deduplicator.SheetFile)}, {Path.Combine(output, Deduplicator.SummaryFile)}");
        return sb.ToString();
    }
}

/// <summary><c>streaming features</c>: a model's penultimate features of every image of a dataset, as Parquet (transfer, §5.2).</summary>
public static class FeaturesCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "model.safetensors or a run folder", Required = true };
        var data = new Option<string>("--data", "-d") { Description = "Dataset folder (labeled or not)", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "The Parquet file to write: id, label, features (a list of floats)", Required = true };
        var batch = new Option<int>("--batch", "-b") { Description = "Batch size", DefaultValueFactory = _ => 256 };
        var workers = KnobOption.Create<int>(Knobs.EvalWorkers);
        var compute = new ComputeFlags();
        var command = new Command("features", "Write a model's penultimate features of every image of a dataset to Parquet (id, label, features).")
        {
            model, data, output, batch, workers,
        };
        compute.AddTo(command);
        command.SetAction(async (parse, cancellationToken) =>
        {
            compute.Apply(parse);
            var dev = TorchDevice.Resolve(parse.GetValue(compute.Device)!);
            var (net, spec) = ModelFile.Load(parse.GetValue(model)!, null, dev);
            var console = new ConsoleProgress();
            var clock = System.Diagnostics.Stopwatch.StartNew();
            FeatureSet set;
            using (net)
            {
                try
                {
                    set = await FeatureExtractor.ExtractAsync(net, spec, parse.GetValue(data)!, dev, parse.GetValue(batch), parse.GetValue(workers),
                        new Progress<(long Done, long Total)>(p => console.Report(string.Create(CultureInfo.InvariantCulture, $"  {p.Done:N0} of {p.Total:N0} images"))), cancellationToken);
                }
                finally
                {
                    console.Done();
                }
            }
            string outFile = parse.GetValue(output)!;
            if (Path.GetDirectoryName(Path.GetFullPath(outFile)) is string dir) Directory.CreateDirectory(dir);
            await FeatureFile.WriteAsync(outFile, set, cancellationToken);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{set.Count:N0} images, {set.Dim} features each ({spec.Arch}), in {clock.Elapsed.TotalSeconds:F1} s -> {outFile}"));
            return (int)ExitCode.Ok;
        });
        return command;
    }
}
