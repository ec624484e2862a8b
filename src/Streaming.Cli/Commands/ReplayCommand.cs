using System.CommandLine;
using System.Globalization;
using Streaming.Cli.Shared;
using Streaming.Engine.Pipelines;

namespace Streaming.Cli.Commands;

/// <summary><c>streaming replay run.json</c>: re-execute a recorded run on the kernels it names and check every output hash.</summary>
public static class ReplayCommand
{
    public static Command Create()
    {
        var record = new Argument<string>("run") { Description = "The run.json of an earlier 'streaming run'" };
        var output = new Option<string?>("--out", "-o") { Description = "Folder for the replay (default: replay-<time> next to run.json)" };
        var allowIsaChange = new Option<bool>("--allow-isa-change")
        {
            Description = "When this CPU cannot run the kernels the record names, replay on its own and compare the metrics within tolerance (accuracies 2 points, counts 2%) instead of the hashes",
        };
        var command = new Command("replay", "Re-execute a run from its run.json, with no cache, on the kernel ISA it records, and report stage by stage whether each output hash matches.")
        {
            record, output, allowIsaChange,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            string runJson = parse.GetValue(record)!;
            string outDir = parse.GetValue(output) ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(runJson))!,
                "replay-" + DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture));
            var view = new StageListView(PipelineGraph.NamesOf(PipelineReplay.LoadRecord(runJson).Manifest.Spec));
            ReplayReport report;
            try
            {
                report = await PipelineReplay.RunAsync(runJson, outDir, parse.GetValue(allowIsaChange), view.Log, view, cancellationToken);
            }
            finally
            {
                view.Finish();
            }
            var checks = report.Files;
            var inv = CultureInfo.InvariantCulture;
            Console.WriteLine();
            Console.WriteLine($"{"stage",-12} {"files",5}  result{(report.ByTolerance ? " (hashes: for information; other kernels)" : "")}");
            foreach (var stage in checks.GroupBy(c => c.Stage))
            {
                var bad = stage.Where(c => !c.Matches).ToList();
                Console.WriteLine($"{stage.Key,-12} {stage.Count(),5}  {(bad.Count == 0 ? "match" : report.ByTolerance ? "differ" : "MISMATCH")}");
                foreach (var c in bad)
                    Console.WriteLine($"    {c.File}: recorded {Short(c.Expected)}, replayed {(c.Actual is null ? "missing" : Short(c.Actual))}");
            }
            if (report.ByTolerance)
            {
                Console.WriteLine();
                Console.WriteLine($"{"metric",-36} {"recorded",12} {"replayed",12}  within");
                foreach (var m in report.Metrics)
                    Console.WriteLine(string.Create(inv, $"{m.Name,-36} {m.Expected,12:0.####} {(m.Actual is double a ? a.ToString("0.####", inv) : "missing"),12}  {(m.Relative ? $"{m.Tolerance:P0}" : $"{m.Tolerance * 100:0.#} pt")}: {(m.Matches ? "yes" : "NO")}"));
                int off = report.Metrics.Count(m => !m.Matches);
                Console.WriteLine(off == 0
                    ? $"replay on other kernels agrees: {report.Metrics.Count} metrics within tolerance; {checks.Count(c => !c.Matches)} of {checks.Count} files differ in their bytes -> {outDir}"
                    : $"replay on other kernels differs: {off} of {report.Metrics.Count} metrics out of tolerance (first: {report.Metrics.First(m => !m.Matches).Name}) -> {outDir}");
            }
            else
            {
                int mismatches = checks.Count(c => !c.Matches);
                Console.WriteLine(mismatches == 0
                    ? $"replay matches: {checks.Count} output files in {checks.Select(c => c.Stage).Distinct().Count()} stages -> {outDir}"
                    : $"replay differs: {mismatches} of {checks.Count} output files (first: stage {checks.First(c => !c.Matches).Stage}, {checks.First(c => !c.Matches).File}) -> {outDir}");
            }
            Console.WriteLine($"kernels: {report.Kernels}");
            return report.Passed ? (int)ExitCode.Ok : (int)ExitCode.ReplayMismatch;
        });
        return command;
    }

    private static string Short(string sha) => sha.Length > 12 ? sha[..12] : sha;
}
