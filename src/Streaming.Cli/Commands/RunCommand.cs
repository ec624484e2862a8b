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
        void Row(string what, string model, string key)
        {
            if (run.Metrics.ContainsKey(key) || key is "baseline" or "teacher" or "student_pretrained" or "student_finetuned")
                sb.AppendLine(string.Create(inv, $"{what,-34} {model,-14} {Pct(key),12}"));
        }
        bool weak = run.Metrics.ContainsKey("teacher_weak");
        Row("baseline (supervised on D)", student, "baseline");
        Row("control (baseline, student's budget)", student, "control");
        Row("teacher, pre-trained on W's tags", teacher, "teacher_weak");
        Row(weak ? "teacher (W's tags, then D)" : "teacher (on D)", teacher, "teacher");
        Row("student, pre-trained on D-hat", student, "student_pretrained");
        Row("student, fine-tuned on D", student, "student_finetuned");
        Row("weakly supervised (W's tags, then D)", student, "weak_finetuned");
        Row("balanced-with-tags, fine-tuned", student, "tags_finetuned");
        sb.AppendLine(string.Create(inv, $"{"pseudo-label precision of D-hat",-34} {"K=" + run.Text("scoring.k") + " P=" + run.Text("scoring.p"),-14} {Pct("pseudo_label_precision"),12}"));
        if (weak)
        {
            sb.AppendLine(string.Create(inv, $"{"tag precision / recall on U",-34} {"",-14} {Pct("tag_precision") + " / " + Pct("tag_recall"),12}"));
            sb.AppendLine(string.Create(inv, $"{"precision of balanced-with-tags",-34} {"K=" + run.Text("scoring.k"),-14} {Pct("tags_dhat_precision"),12}"));
        }
        var reused = run.Stages.Where(s => s.Reused).Select(s => s.Name).ToList();
        sb.AppendLine(string.Create(inv, $"wall time {run.WallSeconds / 60:F1} min; {run.Stages.Count - reused.Count} stages ran{(reused.Count > 0 ? ", reused: " + string.Join(", ", reused) : "")}"));
        return sb.ToString();
    }
}
