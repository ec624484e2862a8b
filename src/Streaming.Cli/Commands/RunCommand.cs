using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
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
            var view = new StageListView(PipelineRunner.StagesOf(m.Spec));
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

    /// <summary>The result table: top-1 of each model on the test set, and the precision of the pseudo-labels.</summary>
    internal static string Table(RunRecord run)
    {
        var inv = CultureInfo.InvariantCulture;
        string teacher = run.Text("teacher.arch") ?? Path.GetFileName(run.Text("teacher.model") ?? "");
        string student = run.Text("student.arch") ?? "";
        string Pct(string key) => run.Metrics.TryGetValue(key, out double v) ? (v * 100).ToString("F2", inv) + "%" : "-";
        var sb = new StringBuilder();
        sb.AppendLine();
        sb.AppendLine(string.Create(inv, $"{"result",-34} {"model",-14} {"top-1 (test)",12}"));
        sb.AppendLine(string.Create(inv, $"{"baseline (supervised on D)",-34} {student,-14} {Pct("baseline"),12}"));
        sb.AppendLine(string.Create(inv, $"{"teacher (on D)",-34} {teacher,-14} {Pct("teacher"),12}"));
        sb.AppendLine(string.Create(inv, $"{"student, pre-trained on D-hat",-34} {student,-14} {Pct("student_pretrained"),12}"));
        sb.AppendLine(string.Create(inv, $"{"student, fine-tuned on D",-34} {student,-14} {Pct("student_finetuned"),12}"));
        sb.AppendLine(string.Create(inv, $"{"pseudo-label precision of D-hat",-34} {"K=" + run.Text("scoring.k") + " P=" + run.Text("scoring.p"),-14} {Pct("pseudo_label_precision"),12}"));
        var reused = run.Stages.Where(s => s.Reused).Select(s => s.Name).ToList();
        sb.AppendLine(string.Create(inv, $"wall time {run.WallSeconds / 60:F1} min; {run.Stages.Count - reused.Count} stages ran{(reused.Count > 0 ? ", reused: " + string.Join(", ", reused) : "")}"));
        return sb.ToString();
    }
}
