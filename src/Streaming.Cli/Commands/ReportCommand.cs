using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Streaming.Core;
using Streaming.Core.Reports;
using Streaming.Engine.Pipelines;

namespace Streaming.Cli.Commands;

/// <summary><c>streaming report RUN_DIR</c>: contact sheets by rank, class balance and the K sweep of a pipeline run, as PNGs and one HTML page.</summary>
public static class ReportCommand
{
    public static Command Create()
    {
        var run = new Argument<string>("run") { Description = "Run folder of 'streaming run' (holds run.json)" };
        var output = new Option<string?>("--out", "-o") { Description = "Folder for the PNGs and index.html (default: RUN/report)" };
        var command = new Command("report", "Draw a run's D-hat: per-class contact sheets at ranks 1, 10, 100, ..., class-balance bars, the K-sweep curve, and an HTML page.")
        {
            run, output,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            string runDir = parse.GetValue(run)!;
            string runJson = Path.Combine(runDir, RunRecord.FileName);
            if (!File.Exists(runJson)) throw new StreamingException($"{runJson}: not found (is {runDir} the --out of 'streaming run'?)");
            var record = RunRecord.Load(runJson);
            string Folder(string stage) => record.StageFolder(runDir, stage);
            string outDir = parse.GetValue(output) ?? Path.Combine(runDir, "report");
            string Pct(string key) => record.Metrics.TryGetValue(key, out double v) ? (v * 100).ToString("F2", CultureInfo.InvariantCulture) + "%" : "-";
            string title = $"{record.Text("name")}: baseline {Pct("baseline")}, teacher {Pct("teacher")}, student {Pct("student_pretrained")} pre-trained, {Pct("student_finetuned")} fine-tuned";
            var summary = await SelectionReport.WriteAsync(new SelectionReportInputs(Folder("select"), Folder("score"), Path.Combine(Folder("split"), "u"), Title: title),
                outDir, cancellationToken);
            await Streaming.Core.AtomicFile.WriteAllTextAsync(Path.Combine(outDir, "summary.json"), JsonSerializer.Serialize(summary, new JsonSerializerOptions { WriteIndented = true }) + "\n", cancellationToken);
            Console.WriteLine($"report: {Path.Combine(outDir, SelectionReport.PageFile)} ({summary.Files.Count} files)");
            if (summary.Precision is double p) Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  pseudo-label precision {p:P2} over {summary.Selected:N0} D-hat rows"));
            return (int)ExitCode.Ok;
        });
        return command;
    }
}
