using System.CommandLine;
using System.Globalization;
using Streaming.Models.Pipelines;

namespace Streaming.Cli.Commands;

/// <summary><c>streaming replay run.json</c>: re-execute a recorded run and check every output hash.</summary>
public static class ReplayCommand
{
    public static Command Create()
    {
        var record = new Argument<string>("run") { Description = "The run.json of an earlier 'streaming run'" };
        var output = new Option<string?>("--out", "-o") { Description = "Folder for the replay (default: replay-<time> next to run.json)" };
        var command = new Command("replay", "Re-execute a run from its run.json, with no cache, and report stage by stage whether each output hash matches.")
        {
            record, output,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            string runJson = parse.GetValue(record)!;
            string outDir = parse.GetValue(output) ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(runJson))!,
                "replay-" + DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture));
            var console = new ConsoleProgress();
            IReadOnlyList<ReplayCheck> checks;
            try
            {
                checks = await PipelineReplay.RunAsync(runJson, outDir, line => { console.Done(); Console.Error.WriteLine(line); }, new Progress<string>(console.Report), cancellationToken);
            }
            finally
            {
                console.Done();
            }
            Console.WriteLine();
            Console.WriteLine($"{"stage",-12} {"files",5}  result");
            foreach (var stage in checks.GroupBy(c => c.Stage))
            {
                var bad = stage.Where(c => !c.Matches).ToList();
                Console.WriteLine($"{stage.Key,-12} {stage.Count(),5}  {(bad.Count == 0 ? "match" : "MISMATCH")}");
                foreach (var c in bad)
                    Console.WriteLine($"    {c.File}: recorded {Short(c.Expected)}, replayed {(c.Actual is null ? "missing" : Short(c.Actual))}");
            }
            int mismatches = checks.Count(c => !c.Matches);
            Console.WriteLine(mismatches == 0
                ? $"replay matches: {checks.Count} output files in {checks.Select(c => c.Stage).Distinct().Count()} stages -> {outDir}"
                : $"replay differs: {mismatches} of {checks.Count} output files (first: stage {checks.First(c => !c.Matches).Stage}, {checks.First(c => !c.Matches).File}) -> {outDir}");
            return mismatches == 0 ? (int)ExitCode.Ok : (int)ExitCode.ReplayMismatch;
        });
        return command;
    }

    private static string Short(string sha) => sha.Length > 12 ? sha[..12] : sha;
}
