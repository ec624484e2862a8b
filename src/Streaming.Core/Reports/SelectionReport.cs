using System.Globalization;
using System.Text.Json;
using SkiaSharp;
using Streaming.Core.Datasets;
using Streaming.Core.Plots;
using Streaming.Core.Selection;
using Streaming.Core.Shards;

namespace Streaming.Core.Reports;

/// <summary>
/// A report on one D-hat, as a folder of PNGs and one HTML page: per class a contact sheet of the images at
/// ranks 1, 10, 100, ... (the paper's Fig. 2), captioned with score and, when U's withheld labels are known,
/// the true class, wrong pseudo-labels framed in red; the class balance and per-class pseudo-label precision;
/// precision (or, without labels, the mean teacher score) against K, from the stored score shards.
/// </summary>
/// <remarks>
/// Cost: one read of D-hat, one pass over U's shards that stops once the few contact-sheet images are found,
/// and one read of the score shards feeding a <see cref="Selector"/> per K of the sweep, which together hold up
/// to the sum of K x classes entries. U's withheld labels are held in memory as an id -> label map.
/// </remarks>
public static class SelectionReport
{
    public const string BalanceFile = "balance.png";
    public const string SweepFile = "k-sweep.png";
    public const string PageFile = "index.html";

    /// <summary>Side of a contact-sheet cell in pixels.</summary>
    internal const int Cell = 128;

    internal static readonly SKColor Wrong = new(210, 25, 25);
    private static readonly SKColor Right = new(0, 120, 0);
    private static readonly SKColor Grey = new(105, 105, 105);

    /// <summary>
    /// Writes into <paramref name="outDir"/> <c>contact-NN.png</c> for every class, <c>balance.png</c>,
    /// <c>k-sweep.png</c> and <c>index.html</c> (which links them by relative paths), and returns the numbers.
    /// Inputs that do not fit together (a D-hat that is not the selection's, scores other than those the
    /// selection was made from, P above the scores' P') fail with a <see cref="StreamingException"/>.
    /// </summary>
    public static async Task<SelectionReportSummary> WriteAsync(SelectionReportInputs inputs, string outDir, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentException.ThrowIfNullOrEmpty(outDir);
        var selection = LoadSelection(inputs.SelectionDir);
        var scoring = ScoringManifest.Load(inputs.ScoresDir);
        CheckSameScores(selection, scoring, inputs);
        var dataset = DatasetManifest.Load(inputs.UnlabeledDir);
        var notes = new List<string>();
        var classNames = selection.Classes;
        int classes = classNames.Count;
        if (dataset.Classes.Count > 0 && !dataset.Classes.SequenceEqual(classNames, StringComparer.Ordinal))
            notes.Add($"U's dataset.json names other classes than the teacher ({string.Join(", ", dataset.Classes.Take(5))}, ...): true labels are compared to pseudo-labels by index.");

        var labels = await LoadLabelsAsync(inputs.UnlabeledDir, dataset, notes, cancellationToken).ConfigureAwait(false);
        string dhatPath = Path.Combine(inputs.SelectionDir, SelectionManifest.DhatFileName);
        if (selection.DhatSha256.Length > 0 && File.Exists(dhatPath) && Hashing.Sha256File(dhatPath) != selection.DhatSha256)
            throw new StreamingException($"{dhatPath}: does not match the hash in {SelectionManifest.FileName} (changed since selection?)");
        var dhat = await DhatStats.ReadAsync(dhatPath, classes, labels, cancellationToken).ConfigureAwait(false);
        if (selection.Counts.Count == classes && !selection.Counts.SequenceEqual(dhat.Counts))
            throw new StreamingException($"{dhatPath}: holds other class counts than {SelectionManifest.FileName} says");
        if (labels is not null)
        {
            long unknown = dhat.Rows - dhat.Known.Sum();
            if (unknown > 0) notes.Add($"{unknown:N0} of D-hat's {dhat.Rows:N0} entries are images without a withheld label; precision counts only the others.");
        }

        Directory.CreateDirectory(outDir);
        var files = new List<string>();
        var sheets = await DrawContactSheetsAsync(inputs, dataset, selection, dhat, labels is not null, outDir, notes, cancellationToken).ConfigureAwait(false);
        files.AddRange(sheets.Select(s => s.File));

        double? Precision(long correct, long known) => labels is null || known == 0 ? null : (double)correct / known;
        var classPrecision = Enumerable.Range(0, classes).Select(c => Precision(dhat.Correct[c], dhat.Known[c])).ToList();
        double? overall = Precision(dhat.Correct.Sum(), dhat.Known.Sum());
        double? meanScore = dhat.Rows == 0 ? null : dhat.ScoreSums.Sum() / dhat.Rows;

        DrawBalance(Path.Combine(outDir, BalanceFile), selection, dhat, labels is not null, classPrecision, overall);
        files.Add(BalanceFile);

        var ks = SweepKs(inputs.SweepK, selection.RowsScored, classes, selection.K);
        if (ks.Count == 0) notes.Add("The K sweep was skipped (an empty list of K was given).");
        var sweep = await SweepAsync(inputs.ScoresDir, scoring, selection, ks, labels, cancellationToken).ConfigureAwait(false);
        DrawSweep(Path.Combine(outDir, SweepFile), selection, sweep, labels is not null);
        files.Add(SweepFile);

        var summary = new SelectionReportSummary
        {
            K = selection.K,
            P = selection.P,
            Balance = selection.Balance,
            RowsScored = selection.RowsScored,
            Selected = dhat.Rows,
            DistinctImages = selection.DistinctImages,
            Classes = classNames,
            Counts = dhat.Counts,
            LabelsKnown = labels is not null,
            ClassPrecision = classPrecision,
            Precision = overall,
            MeanScore = meanScore,
            KSweep = sweep,
            ContactSheets = sheets,
            Files = [.. files, PageFile],
            Notes = notes,
        };
        string title = inputs.Title ?? $"D-hat: K = {selection.K:N0}, P = {selection.P}, {selection.Balance}";
        ReportPage.Write(Path.Combine(outDir, PageFile), title, inputs, selection, summary, dhat);
        return summary;
    }

    private static SelectionManifest LoadSelection(string dir)
    {
        string path = Path.Combine(dir, SelectionManifest.FileName);
        if (!File.Exists(path)) throw new StreamingException($"{path}: not found (is {dir} the output of 'streaming select'?)");
        SelectionManifest? m;
        try
        {
            m = JsonSerializer.Deserialize<SelectionManifest>(File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            throw new StreamingException($"{path}: bad selection manifest ({e.Message})", e);
        }
        if (m is null || m.K < 1 || m.P < 1 || m.Classes.Count == 0)
            throw new StreamingException($"{path}: bad selection manifest (needs k >= 1, p >= 1 and the classes)");
        return m;
    }

    /// <summary>The sweep only describes this D-hat if it reads the very score shards the selection read.</summary>
    private static void CheckSameScores(SelectionManifest selection, ScoringManifest scoring, SelectionReportInputs inputs)
    {
        string scoringPath = Path.Combine(inputs.ScoresDir, ScoringManifest.FileName);
        if (scoring.Classes.Count != selection.Classes.Count)
            throw new StreamingException($"{scoringPath}: has {scoring.Classes.Count} classes, the selection {selection.Classes.Count}: not the scores it was made from");
        try
        {
            TopP.Check(selection.P, scoring.TopP);
        }
        catch (Streaming.Core.Options.OptionException)
        {
            throw new StreamingException($"{scoringPath}: keeps {scoring.TopP} classes an image, fewer than the selection's P = {selection.P}");
        }
        if (selection.ScoreShards.Count == 0) return;
        var listed = scoring.Shards.ToDictionary(s => s.File, s => s.Sha256, StringComparer.Ordinal);
        foreach (var s in selection.ScoreShards)
            if (!listed.TryGetValue(s.File, out var sha) || sha != s.Sha256)
                throw new StreamingException($"{scoringPath}: does not list score shard '{s.File}' as the selection read it: {inputs.SelectionDir} was made from other scores");
        if (scoring.Shards.Count != selection.ScoreShards.Count)
            throw new StreamingException($"{scoringPath}: lists {scoring.Shards.Count} score shards, the selection read {selection.ScoreShards.Count}: {inputs.SelectionDir} was made from other scores");
    }

    private static async Task<Dictionary<string, int>?> LoadLabelsAsync(string dir, DatasetManifest dataset, List<string> notes, CancellationToken cancellationToken)
    {
        if (dataset.WithheldLabelsFile is not { } name)
        {
            notes.Add($"{dir} has no withheld labels (it was not made by 'streaming split'), so pseudo-label precision is not measured; the K sweep shows the mean teacher score instead.");
            return null;
        }
        string path = Path.Combine(dir, name);
        if (!File.Exists(path))
        {
            notes.Add($"{path} (U's withheld labels) is missing, so pseudo-label precision is not measured; the K sweep shows the mean teacher score instead.");
            return null;
        }
        try
        {
            return await DatasetSplitter.ReadWithheldAsync(path, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException and not StreamingException)
        {
            throw new StreamingException($"{path}: unreadable withheld labels ({e.Message})", e);
        }
    }

    /// <summary>contact-00.png ... (wider numbers for more than 100 classes, so the names sort).</summary>
    internal static string ContactFile(int c, int classes) =>
        "contact-" + c.ToString(CultureInfo.InvariantCulture).PadLeft(Math.Max(2, (classes - 1).ToString(CultureInfo.InvariantCulture).Length), '0') + ".png";

    internal static string ClassName(IReadOnlyList<string> names, int c) =>
        c >= 0 && c < names.Count && names[c].Length > 0 ? names[c] : c.ToString(CultureInfo.InvariantCulture);

    internal static string Percent(double? fraction) => fraction is double f ? (100 * f).ToString("0.0", CultureInfo.InvariantCulture) + "%" : "n/a";

    private static async Task<List<ContactSheetSummary>> DrawContactSheetsAsync(SelectionReportInputs inputs, DatasetManifest dataset, SelectionManifest selection,
        DhatStats dhat, bool labelsKnown, string outDir, List<string> notes, CancellationToken cancellationToken)
    {
        // One pass over U for the few images the sheets show, ending as soon as all are found.
        var wanted = dhat.Cells.SelectMany(cells => cells.Select(c => c.Id)).ToHashSet(StringComparer.Ordinal);
        var images = await ImageShardReader.FindAsync(dataset.ShardPaths(inputs.UnlabeledDir), wanted, cancellationToken).ConfigureAwait(false);
        int missing = wanted.Count - images.Count;
        if (missing > 0) notes.Add($"{missing} of the {wanted.Count} images on the contact sheets are not in {inputs.UnlabeledDir} (drawn as pink squares): is it the dataset that was scored?");

        var names = selection.Classes;
        var result = new List<ContactSheetSummary>(names.Count);
        for (int c = 0; c < names.Count; c++)
        {
            string quality = !labelsKnown ? "true labels unknown"
                : dhat.Known[c] == 0 ? "precision n/a"
                : $"precision {Percent((double)dhat.Correct[c] / dhat.Known[c])} ({dhat.Correct[c]:N0} of {dhat.Known[c]:N0} right)";
            var heading = new List<TextLine>
            {
                TextLine.Black($"class {c}: {ClassName(names, c)}"),
                new($"{dhat.Counts[c]:N0} images in D-hat (K = {selection.K:N0}, P = {selection.P}) · {quality}", Grey),
            };
            if (dhat.Counts[c] == 0) heading.Add(new TextLine("no image of this class in D-hat", Wrong));
            else heading.Add(new TextLine(labelsKnown ? "images at ranks 1, 10, 100, ...; a red frame marks a wrong pseudo-label" : "images at ranks 1, 10, 100, ...", Grey));
            var cells = new List<GridCell>();
            foreach (var cell in dhat.Cells[c])
            {
                var caption = new List<TextLine>
                {
                    TextLine.Black($"rank {cell.Rank:N0}"),
                    TextLine.Black($"score {cell.Score.ToString("0.0000", CultureInfo.InvariantCulture)}"),
                };
                SKColor? frame = null;
                if (labelsKnown)
                {
                    if (cell.TrueClass is not int t) caption.Add(new TextLine("true: unknown", Grey));
                    else if (t == c) caption.Add(new TextLine($"true: {ClassName(names, t)}", Right));
                    else
                    {
                        caption.Add(new TextLine($"true: {ClassName(names, t)}", Wrong));
                        frame = Wrong;
                    }
                }
                var bytes = images.GetValueOrDefault(cell.Id);
                caption.Add(bytes is null ? new TextLine($"not in U: {cell.Id}", Wrong) : new TextLine(cell.Id, Grey, KeepEnd: true));
                cells.Add(new GridCell(bytes, caption, frame));
            }
            string file = ContactFile(c, names.Count);
            ImageGrid.Save(Path.Combine(outDir, file), cells, Math.Max(1, cells.Count), Cell, heading);
            result.Add(new ContactSheetSummary(c, file, dhat.Cells[c]));
        }
        return result;
    }

    private static void DrawBalance(string path, SelectionManifest selection, DhatStats dhat, bool labelsKnown, IReadOnlyList<double?> classPrecision, double? overall)
    {
        var categories = Enumerable.Range(0, selection.Classes.Count).Select(c => ClassName(selection.Classes, c)).ToList();
        var panels = new List<BarPanel>
        {
            new($"images per class in D-hat (K = {selection.K:N0}, P = {selection.P}, {selection.Balance})", "images", categories,
                [new BarSeries("images", dhat.Counts.Select(n => (double?)n).ToList(), LinePlot.Palette[0])]),
        };
        if (labelsKnown)
        {
            panels.Add(new BarPanel("pseudo-label precision per class (from U's withheld labels)", "precision (%)", categories,
                [new BarSeries("precision", classPrecision.Select(p => p * 100).ToList(), LinePlot.Palette[2], "0.0")],
                YMax: 100, Reference: overall is double o ? (100 * o, $"all of D-hat: {Percent(o)}") : null));
        }
        else
        {
            panels.Add(new BarPanel("mean teacher score per class (precision unknown: no labels)", "mean score", categories,
                [new BarSeries("mean score", Enumerable.Range(0, categories.Count).Select(c => dhat.Counts[c] == 0 ? (double?)null : dhat.ScoreSums[c] / dhat.Counts[c]).ToList(),
                    LinePlot.Palette[1], "0.000")],
                YMax: 1));
        }
        BarPlot.Save(path, panels);
    }

    /// <summary>The K of the sweep: as given (sorted, distinct), or 1, 3, 10, 30, ... while K x classes fits in the rows scored, and the selection's K.</summary>
    internal static IReadOnlyList<int> SweepKs(IReadOnlyList<int>? given, long rowsScored, int classes, int selectionK)
    {
        if (given is not null)
        {
            foreach (int k in given)
                if (k < 1) throw new StreamingException($"K sweep: K = {k}; every K must be at least 1");
            return given.Distinct().Order().ToList();
        }
        var ks = new SortedSet<int> { selectionK };
        long max = rowsScored / Math.Max(1, classes);
        for (long decade = 1; decade <= max; decade *= 10)
        {
            ks.Add((int)Math.Min(int.MaxValue, decade));
            if (3 * decade <= max) ks.Add((int)Math.Min(int.MaxValue, 3 * decade));
        }
        return ks.ToList();
    }

    /// <summary>One read of the score shards feeds a selector per K (with the selection's P, mode and seed); each result is then scored against the labels.</summary>
    private static async Task<List<KSweepPoint>> SweepAsync(string scoresDir, ScoringManifest scoring, SelectionManifest selection, IReadOnlyList<int> ks,
        IReadOnlyDictionary<string, int>? labels, CancellationToken cancellationToken)
    {
        if (ks.Count == 0) return [];
        var mode = BalanceModes.Parse(selection.Balance);
        int classes = selection.Classes.Count;
        var selectors = ks.Select(k => new Selector(classes, k, selection.P, mode, selection.Seed)).ToArray();
        foreach (var shard in scoring.Shards)
            await foreach (var batch in ScoreShards.ReadBatchesAsync(Path.Combine(scoresDir, shard.File), cancellationToken).ConfigureAwait(false))
                foreach (var selector in selectors)
                    selector.Offer(batch);
        var points = new List<KSweepPoint>(selectors.Length);
        foreach (var selector in selectors)
        {
            long n = 0, known = 0, correct = 0;
            double sum = 0;
            foreach (var (c, ranked) in selector.Result())
            {
                foreach (var candidate in ranked)
                {
                    n++;
                    sum += candidate.Prob;
                    if (labels is not null && labels.TryGetValue(candidate.Id, out int t))
                    {
                        known++;
                        if (t == c) correct++;
                    }
                }
            }
            points.Add(new KSweepPoint(selector.K, n, labels is null || known == 0 ? null : (double)correct / known, n == 0 ? null : sum / n));
        }
        return points;
    }

    private static void DrawSweep(string path, SelectionManifest selection, IReadOnlyList<KSweepPoint> sweep, bool labelsKnown)
    {
        string xLabel = "K, images per class (log scale)";
        string recipe = $"P = {selection.P}, {selection.Balance}";
        var here = sweep.Where(p => p.K == selection.K).ToList();
        List<Series> Lines(Func<KSweepPoint, double?> value, SKColor color)
        {
            var series = new List<Series> { new("D-hat at K", sweep.Where(p => value(p) is not null).Select(p => ((double)p.K, value(p)!.Value)).ToList(), color) };
            if (here.Count > 0 && value(here[0]) is double v) series.Add(new Series($"this D-hat (K = {selection.K:N0})", [(selection.K, v)], Wrong));
            return series;
        }
        var panels = new List<Panel>();
        if (labelsKnown)
            panels.Add(new Panel($"pseudo-label precision against K ({recipe})", xLabel, "precision (%)", Lines(p => p.Precision * 100, LinePlot.Palette[2]), LogX: true));
        panels.Add(new Panel(labelsKnown ? $"mean teacher score against K ({recipe})" : $"mean teacher score against K ({recipe}; no labels)", xLabel, "mean score of D-hat",
            Lines(p => p.MeanScore, LinePlot.Palette[1]), LogX: true));
        LinePlot.Save(path, panels, panelWidth: 560);
    }
}
