using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Streaming.Cli.Shared;
using Streaming.Core.Options;
using Streaming.Engine.Pipelines;

namespace Streaming.Cli.Commands;

/// <summary><c>streaming run PIPELINE.yaml</c>: every stage of the method, cached by content, recorded in run.json.</summary>
public static class RunCommand
{
    public static Command Create()
    {
        var manifest = new Argument<string>("pipeline") { Description = "Pipeline manifest (YAML), e.g. pipelines/fashion-mnist.yaml" };
        var output = new Option<string?>("--out", "-o") { Description = "Run folder: run.json and cache/ (default: runs/<name>)" };
        var sets = new Option<string[]>("--set") { Description = "Override a manifest key, e.g. --set scoring.k=2000 (repeatable)", AllowMultipleArgumentsPerToken = false };
        var isa = KnobOption.Create<string>(Knobs.Isa, description: Knobs.Isa.Help + "; the same as --set compute.isa=...", withDefault: false);
        var json = new Option<bool>("--json") { Description = "The run record (run.json) on stdout, the table on stderr" };
        var command = new Command("run", "Run a pipeline manifest end to end (teacher, scoring, selection, student, fine-tuning), reusing unchanged stages.")
        {
            manifest, output, sets, isa, json,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var overrides = (parse.GetValue(sets) ?? []).ToList();
            if (parse.GetValue(isa) is string pinned) overrides.Add($"compute.isa={pinned}");
            var m = PipelineManifest.Load(parse.GetValue(manifest)!, overrides);
            string outDir = parse.GetValue(output) ?? Path.Combine("runs", m.Spec.Name);
            var view = new StageListView(PipelineGraph.NamesOf(m.Spec));
            RunRecord run;
            try
            {
                run = await new PipelineRunner(m, outDir, view.Log, view).RunAsync(cancellationToken);
            }
            finally
            {
                view.Finish();
            }
            string record = Path.Combine(outDir, RunRecord.FileName);
            if (parse.GetValue(json))
            {
                Console.Error.Write(Table(run));
                Console.Write(await File.ReadAllTextAsync(record, cancellationToken));
                return (int)ExitCode.Ok;
            }
            Console.Write(Table(run));
            Console.WriteLine($"record: {record}");
            return (int)ExitCode.Ok;
        });
        return command;
    }

    /// <summary>
    /// The result table: top-1 of each model on the test set, and the precision of the pseudo-labels (and of the tags, in the
    /// semi-weak setting). Its rows are the metrics that declare one (<see cref="TableRow"/>), section by section, in the
    /// order of their stages, for the stages the run had.
    /// </summary>
    internal static string Table(RunRecord run)
    {
        var inv = CultureInfo.InvariantCulture;
        var ran = run.Stages.Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
        var stages = PipelineGraph.All.Where(s => ran.Contains(s.Name)).ToList();
        var rows = new List<(string Label, string Model, string Value)>();
        foreach (var section in Enum.GetValues<TableSection>())
            foreach (var metric in stages.SelectMany(s => s.Metrics).Where(m => m.Row?.Section == section))
            {
                var row = metric.Row!;
                string value = metric.Format(run.Metrics) + (row.Paired is { } paired ? " / " + paired.Format(run.Metrics) : "");
                rows.Add((row.LabelFor(run.Metrics), Model(run, row.Model), value));
            }
        // The label column is as wide as its longest label (at least 34), so that every row lines up.
        int width = rows.Select(r => r.Label.Length).Append(34).Max();
        var sb = new StringBuilder();
        sb.AppendLine();
        sb.AppendLine(string.Create(inv, $"{"result".PadRight(width)} {"model",-14} {"top-1 (test)",12}"));
        foreach (var (label, model, value) in rows)
            sb.AppendLine(string.Create(inv, $"{label.PadRight(width)} {model,-14} {value,12}"));
        var reused = run.Stages.Where(s => s.Reused).Select(s => s.Name).ToList();
        sb.AppendLine(string.Create(inv, $"wall time {run.WallSeconds / 60:F1} min; {run.Stages.Count - reused.Count} stages ran{(reused.Count > 0 ? ", reused: " + string.Join(", ", reused) : "")}"));
        return sb.ToString();
    }

    /// <summary>What a row's model column shows, from the run's resolved manifest.</summary>
    private static string Model(RunRecord run, TableModel model) => model switch
    {
        TableModel.Student => run.Text("student.arch") ?? "",
        TableModel.Teacher => run.Text("teacher.arch") ?? Path.GetFileName(run.Text("teacher.model") ?? ""),
        TableModel.KAndP => "K=" + run.Text("scoring.k") + " P=" + run.Text("scoring.p"),
        TableModel.K => "K=" + run.Text("scoring.k"),
        _ => "",
    };
}
