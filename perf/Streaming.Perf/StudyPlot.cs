using System.Text.Json.Nodes;
using Streaming.Core.Plots;

namespace Streaming.Perf;

/// <summary>
/// <c>study-plot OUT.png RUN.json...</c>: top-1 of the student (pre-trained and fine-tuned) and the baseline,
/// and the pseudo-label precision, against K, from the run.json files of ranked runs that differ in K
/// (the figure in docs/results.md).
/// </summary>
internal static class StudyPlot
{
    public static void Run(string[] args)
    {
        var runs = args.Skip(1).Select(f => JsonNode.Parse(File.ReadAllText(f))!.AsObject())
            .Where(r => r["resolved"]!["scoring.balance"]!.ToString() == "ranked")
            .Select(r => (K: r["resolved"]!["scoring.k"]!.GetValue<int>(), M: r["metrics"]!.AsObject()))
            .OrderBy(r => r.K).ToList();
        Series Line(string name, string key, int color) =>
            new(name, runs.Select(r => ((double)r.K, r.M[key]!.GetValue<double>() * 100)).ToList(), LinePlot.Palette[color]);
        LinePlot.Save(args[0],
        [
            new Panel("top-1 on the test set against K (seed 0)", "K, images per class (log scale)", "top-1 (%)",
                [Line("student fine-tuned on D", "student_finetuned", 0), Line("student pre-trained on D-hat", "student_pretrained", 1), Line("supervised baseline", "baseline", 2)],
                LogX: true),
            new Panel("pseudo-label precision of D-hat against K", "K, images per class (log scale)", "precision (%)",
                [Line("precision", "pseudo_label_precision", 3)], LogX: true),
        ]);
        Console.WriteLine($"{args[0]}: {runs.Count} runs, K = {string.Join(", ", runs.Select(r => r.K))}");
    }
}
