using System.CommandLine;
using Streaming.Cli.Shared;
using Streaming.Core.Tags;

namespace Streaming.Cli.Commands;

/// <summary><c>streaming tags</c>: weak labels ready to pre-train on: a dataset's own tags column, or hashtag-like tags drawn from known labels (the tag-noise model).</summary>
public static class TagsCommand
{
    public static Command Create()
    {
        var defaults = new TagNoiseModel();
        var data = new Option<string>("--data", "-d") { Description = "A dataset: with the tag-noise model, one whose labels are known (U from split, its withheld labels, or a labeled set); with --from-column, one with a tags column", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Folder for w/ (the tagged images), tags/ (the tags as soft targets) and tags.json", Required = true };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the tags (with the image id)", DefaultValueFactory = _ => 0UL };
        var confusion = new Option<string?>("--confusion") { Description = "An evaluation report (eval --out, or a pipeline stage's eval-test.json) whose confusion matrix says which classes are mistaken for which; default: wrong tags uniform" };
        var untagged = new Option<double>("--untagged") { Description = "Share of images with no tag", DefaultValueFactory = _ => defaults.Untagged };
        var headRecall = new Option<double>("--head-recall") { Description = "Chance that the head class is tagged (tail classes less: a Zipf curve)", DefaultValueFactory = _ => defaults.HeadRecall };
        var zipf = new Option<double>("--zipf") { Description = "Exponent of the Zipf curve of recall over classes", DefaultValueFactory = _ => defaults.ZipfExponent };
        var wrong = new Option<double>("--wrong-tags") { Description = "Mean number of wrong tags an image (Poisson)", DefaultValueFactory = _ => defaults.WrongTagsMean };
        var fromColumn = new Option<bool>("--from-column") { Description = "Use the dataset's own tags column (ingested weak labels) instead of the tag-noise model; precision and recall are measured where labels are known" };
        var confusable = new Option<double>("--confusable") { Description = "With --confusion: share of wrong tags drawn from it (the rest uniform)", DefaultValueFactory = _ => defaults.Confusable };
        var command = new Command("tags", "Weak labels as W and soft targets to pre-train on: a dataset's tags column (--from-column), or hashtag-like tags made from known labels (a seeded tag-noise model: untagged images, Zipf recall over classes, confusable wrong tags).")
        {
            data, output, seed, confusion, untagged, headRecall, zipf, wrong, confusable, fromColumn,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            foreach (var (name, value) in new[] { ("--untagged", parse.GetValue(untagged)), ("--head-recall", parse.GetValue(headRecall)), ("--confusable", parse.GetValue(confusable)) })
                if (value is < 0 or > 1) throw new ArgumentException($"{name} {value} must be between 0 and 1");
            if (parse.GetValue(wrong) < 0 || parse.GetValue(zipf) < 0) throw new ArgumentException("--wrong-tags and --zipf must not be negative");
            var model = new TagNoiseModel
            {
                Seed = parse.GetValue(seed), Untagged = parse.GetValue(untagged), HeadRecall = parse.GetValue(headRecall), ZipfExponent = parse.GetValue(zipf),
                WrongTagsMean = parse.GetValue(wrong), Confusable = parse.GetValue(confusable),
                Confusion = parse.GetValue(confusion) is string c ? WeakLabels.ReadConfusion(c) : null,
            };
            string outDir = parse.GetValue(output)!;
            if (parse.GetValue(fromColumn) && parse.GetValue(confusion) is not null)
                throw new ArgumentException("--confusion belongs to the tag-noise model; with --from-column the tags are the dataset's own");
            var result = parse.GetValue(fromColumn) ? await WeakLabels.FromColumnAsync(parse.GetValue(data)!, outDir, cancellationToken)
                : await WeakLabels.MakeAsync(parse.GetValue(data)!, outDir, model, cancellationToken);
            Console.WriteLine(WeakLabels.Describe(result));
            Console.WriteLine($"W: {result.Dataset}");
            Console.WriteLine($"tags: {result.Tags}   (pre-train on them: streaming train --data {result.Dataset} --soft-targets {result.Tags} ...)");
            Console.WriteLine($"report: {Path.Combine(outDir, WeakLabels.ReportFile)}");
            return (int)ExitCode.Ok;
        });
        return command;
    }
}
