using System.CommandLine;
using Streaming.Cli.Shared;
using Streaming.Core.Datasets;

namespace Streaming.Cli.Commands;

/// <summary><c>streaming inspect</c>: a dataset's inventory, and optionally a contact sheet of sample images.</summary>
public static class InspectCommand
{
    public static Command Create()
    {
        var dataset = new Argument<string>("dataset") { Description = "Dataset folder" };
        var sample = new Option<int>("--sample") { Description = "Draw this many images, spread evenly over the dataset, into --out", DefaultValueFactory = _ => 0 };
        var output = new Option<string?>("--out", "-o") { Description = "Contact sheet PNG to write (with --sample)" };
        var cell = new Option<int>("--cell") { Description = "Size of one image in the contact sheet, in pixels", DefaultValueFactory = _ => 112 };
        var json = new Option<bool>("--json") { Description = "One JSON document on stdout (docs/json.md); messages on stderr" };
        var command = new Command("inspect", "Print a dataset's counts, classes, per-class histogram, shards and quarantine summary; draw a contact sheet.")
        {
            dataset, sample, output, cell, json,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            string dir = parse.GetValue(dataset)!;
            bool asJson = parse.GetValue(json);
            Console.Write(asJson ? DatasetInspector.DescribeJson(dir) : DatasetInspector.Describe(dir));
            int n = parse.GetValue(sample);
            string? sheet = parse.GetValue(output);
            if (n > 0 || sheet is not null)
            {
                if (n <= 0) n = 64;
                sheet ??= "contact-sheet.png";
                if (parse.GetValue(cell) < 16) throw new ArgumentException("--cell must be at least 16 pixels");
                int drawn = await ContactSheet.DrawAsync(dir, n, sheet, parse.GetValue(cell), cancellationToken);
                var said = asJson ? Console.Error : Console.Out;
                said.WriteLine();
                said.WriteLine($"contact sheet of {drawn} images -> {sheet}");
            }
            return (int)ExitCode.Ok;
        });
        return command;
    }
}
