using System.CommandLine;
using System.Globalization;
using Streaming.Cli.Shared;
using Streaming.Core.Datasets;

namespace Streaming.Cli.Commands;

/// <summary><c>streaming split</c>: a class-balanced labeled subset D and the unlabeled rest U.</summary>
public static class SplitCommand
{
    public static Command Create()
    {
        var dataset = new Option<string>("--dataset", "-d") { Description = "Labeled dataset folder to split", Required = true };
        var perClass = new Option<int>("--labeled-per-class", "-n") { Description = "Images a class in the labeled set D (0: all labeled images, with --add-unlabeled)", Required = true };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the split (the same seed gives the same split)", DefaultValueFactory = _ => 0UL };
        var labeled = new Option<string>("--labeled") { Description = "Output folder for D", Required = true };
        var unlabeled = new Option<string>("--unlabeled") { Description = "Output folder for U (labels withheld into a side file)", Required = true };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace the output folders if they exist" };
        var addUnlabeled = new Option<string?>("--add-unlabeled") { Description = "A separate unlabeled dataset (an ingested folder) that joins U whole, as the paper's YFCC100M / IG-1B" };
        var distractors = new Option<string?>("--distractors") { Description = "A folder of photos: random crops of them (images of no class) are added to U, withheld label -1" };
        var distractorCount = new Option<int>("--distractor-count") { Description = "With --distractors: how many crops", DefaultValueFactory = _ => 10_000 };
        var keepLabels = new Option<bool>("--keep-labels") { Description = "The rest keeps its labels: --unlabeled is then a labeled held-out set (e.g. a test set split off a labeled collection)" };
        var command = new Command("split", "Split a labeled dataset into a class-balanced labeled set D and an unlabeled set U whose true labels are kept aside.")
        {
            dataset, perClass, seed, labeled, unlabeled, overwrite, addUnlabeled, distractors, distractorCount, keepLabels,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            int n = parse.GetValue(perClass);
            string? extraU = parse.GetValue(addUnlabeled);
            if (n < 0 || (n == 0 && extraU is null)) throw new ArgumentException($"--labeled-per-class must be at least 1 (or 0 with --add-unlabeled: all labeled images in D), got {n}");
            var writer = new DatasetWriterOptions { Overwrite = parse.GetValue(overwrite) };
            if (parse.GetValue(distractorCount) < 1) throw new ArgumentException("--distractor-count must be at least 1");
            var extra = parse.GetValue(distractors) is string photos ? new DistractorOptions(photos, parse.GetValue(distractorCount)) : null;
            var result = await DatasetSplitter.SplitAsync(parse.GetValue(dataset)!, n == 0 ? DatasetSplitter.AllLabeled : n, parse.GetValue(seed),
                parse.GetValue(labeled)!, parse.GetValue(unlabeled)!, writer, cancellationToken, extra, extraU, parse.GetValue(keepLabels));
            var inv = CultureInfo.InvariantCulture;
            Console.WriteLine(string.Create(inv, $"labeled D:   {result.Labeled.Rows,10:N0} images ({(n == 0 ? "all" : $"{n:N0} per class")} x {result.Labeled.Classes.Count} classes) -> {parse.GetValue(labeled)}"));
            if (parse.GetValue(keepLabels))
                Console.WriteLine(string.Create(inv, $"held out:    {result.Unlabeled.Rows,10:N0} images, labeled -> {parse.GetValue(unlabeled)}"));
            else
                Console.WriteLine(string.Create(inv, $"unlabeled U: {result.Unlabeled.Rows,10:N0} images{(extra is null ? "" : $" ({extra.Count:N0} of them distractors)")}, true labels in {result.Unlabeled.WithheldLabelsFile} -> {parse.GetValue(unlabeled)}"));
            return (int)ExitCode.Ok;
        });
        return command;
    }
}
