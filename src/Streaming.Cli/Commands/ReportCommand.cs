using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Streaming.Cli.Shared;
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
            string Folder(PipelineStage stage) => record.StageFolder(runDir, stage);
            string outDir = parse.GetValue(output) ?? Path.Combine(runDir, "report");
            var summary = await SelectionReport.WriteAsync(new SelectionReportInputs(Folder(PipelineGraph.Select), Folder(PipelineGraph.Score),
                Path.Combine(Folder(PipelineGraph.Split), PipelineGraph.UnlabeledFolder), Title: Title(record)),
                outDir, cancellationToken);
            await Streaming.Core.AtomicFile.WriteAllTextAsync(Path.Combine(outDir, "summary.json"), JsonSerializer.Serialize(summary, new JsonSerializerOptions { WriteIndented = true }) + "\n", cancellationToken);
            Console.WriteLine($"report: {Path.Combine(outDir, SelectionReport.PageFile)} ({summary.Files.Count} files)");
            if (summary.Precision is double p) Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  pseudo-label precision {p:P2} over {summary.Selected:N0} D-hat rows"));
            return (int)ExitCode.Ok;
        });
        return command;
    }

    /// <summary>The page's title: the run's name and its models' top-1, as their metrics print.</summary>
    internal static string Title(RunRecord record)
    {
        string Top1(StageMetric metric) => metric.Format(record.Metrics);
        return $"{record.Text("name")}: baseline {Top1(PipelineMetrics.Baseline)}, teacher {Top1(PipelineMetrics.Teacher)}, "
            + $"student {Top1(PipelineMetrics.StudentPretrained)} pre-trained, {Top1(PipelineMetrics.StudentFinetuned)} fine-tuned";
    }
}
