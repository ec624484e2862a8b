using System.Globalization;
using System.Text.Json.Nodes;
using Streaming.Core.Plots;

namespace Streaming.Perf;

/// <summary>
/// <c>study-plot OUT.png RUN.json...</c>: top-1 of the student (pre-trained and fine-tuned) and the baseline,
/// and the pseudo-label precision, against K, from the run.json files of runs that differ only in K and the
/// seed (the figure in docs/results.md). Several seeds at a K give their mean, with a bar from the lowest
/// to the highest.
/// </summary>
internal static class StudyPlot
{
    /// <summary>The settings the runs may differ in; any other difference makes the comparison unfair.</summary>
    private static readonly string[] Varying = ["scoring.k", "seed"];

    public static int Run(string[] args)
    {
        if (args.Length < 2)
        {
            Console.Error.WriteLine("usage: study-plot OUT.png RUN.json... (runs that differ only in scoring.k and seed)");
            return 2;
        }
        var runs = args.Skip(1).Select(f => (File: f, Record: Streaming.Engine.Pipelines.RunRecord.Load(f))).ToList();
        var resolved = runs.Select(r => r.Record.Resolved).ToList();
        // A key one record lacks is one its engine did not have yet (its default then applies): only values both give are compared.
        foreach (string key in resolved.SelectMany(r => r.Select(kv => kv.Key)).Distinct().Where(k => !Varying.Contains(k)).Order(StringComparer.Ordinal))
        {
            var values = runs.Zip(resolved).Where(p => p.Second.ContainsKey(key))
                .GroupBy(p => p.Second[key].GetRawText()).ToList();
            if (values.Count > 1)
            {
                Console.Error.WriteLine($"study-plot: the runs differ in {key} ({string.Join("; ", values.Select(g => $"{g.Key} in {string.Join(", ", g.Select(p => p.First.File))}"))}); pass runs that differ only in {string.Join(" and ", Varying)}");
                return 2;
            }
        }
        var points = runs.Zip(resolved, (r, s) => (r.File, K: s["scoring.k"].GetInt32(), Seed: s["seed"].GetInt64(), Metrics: r.Record.Metrics)).ToList();
        foreach (var twice in points.GroupBy(p => (p.K, p.Seed)).Where(g => g.Count() > 1))
        {
            Console.Error.WriteLine($"study-plot: {twice.Count()} runs with K = {twice.Key.K} and seed {twice.Key.Seed}: {string.Join(", ", twice.Select(p => p.File))}");
            return 2;
        }
        var byK = points.GroupBy(p => p.K).OrderBy(g => g.Key).ToList();
        Series Line(string name, string key, int color)
        {
            var groups = byK.Select(g => (K: (double)g.Key, Values: g.Select(p => p.Metrics[key] * 100).ToList())).ToList();
            return new Series(name, groups.Select(g => (g.K, g.Values.Average())).ToList(), LinePlot.Palette[color],
                groups.Where(g => g.Values.Count > 1).Select(g => (g.K, g.Values.Min(), g.Values.Max())).ToList());
        }
        var seeds = byK.Select(g => string.Join(", ", g.Select(p => p.Seed).Order())).Distinct().ToList();
        string seedNote = seeds.Count == 1 && !seeds[0].Contains(',') ? $"seed {seeds[0]}"
            : seeds.Count == 1 ? $"seeds {seeds[0]}: mean, bars min-max"
            : "mean over seeds, bars min-max";
        LinePlot.Save(args[0],
        [
            new Panel($"top-1 on the test set against K ({seedNote})", "K, images per class (log scale)", "top-1 (%)",
                [Line("student fine-tuned on D", "student_finetuned", 0), Line("student pre-trained on D-hat", "student_pretrained", 1), Line("supervised baseline", "baseline", 2)],
                LogX: true),
            new Panel("pseudo-label precision of D-hat against K", "K, images per class (log scale)", "precision (%)",
                [Line("precision", "pseudo_label_precision", 3)], LogX: true),
        ]);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{args[0]}: {points.Count} runs; {string.Join("; ", byK.Select(g => $"K = {g.Key}: seed {string.Join(", ", g.Select(p => p.Seed).Order())}"))}"));
        return 0;
    }
}
