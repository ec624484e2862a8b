using System.Text.Json;
using SkiaSharp;
using Streaming.Core;
using Streaming.Core.Datasets;
using Streaming.Core.Ingest;
using Streaming.Core.Reports;
using Streaming.Core.Selection;
using Streaming.Core.Shards;
using Streaming.Core.Dataflow;
using Streaming.Models.Teachers;
using Streaming.Engine.Scoring;
using Xunit;

namespace Streaming.Tests;

/// <summary>
/// The selection report end to end without a model: U from a split of the committed sample, score shards
/// written here so that the pseudo-labels are right for a known set of images, D-hat from them, then the report.
/// </summary>
public class ReportTests : IAsyncLifetime
{
    private const int Classes = 10;
    private const int SelectionK = 60; // above every class's candidates (at most 39): D-hat is all of U, each image once (P = 1)

    private readonly TempDir _tmp = new();
    private string Unlabeled => _tmp.Sub("u");
    private string Scores => _tmp.Sub("scores");
    private string Selection => _tmp.Sub("sel");
    private string Out => _tmp.Sub("report");

    /// <summary>Each U image's true label and the pseudo-label (top-1 class) the fake teacher gives it.</summary>
    private readonly Dictionary<string, (int Truth, int Top)> _images = new(StringComparer.Ordinal);

    public async ValueTask InitializeAsync()
    {
        // 300 images, 25-33 a class; D takes 5 a class, U keeps the other 250 (20-28 a class, in 5 shards), its labels withheld.
        await Ingestor.RunAsync(ImageSource.Open(TestPaths.MiniTar), _tmp.Sub("all"), new IngestOptions { Writer = new() { ShardSize = 100 } });
        var split = await DatasetSplitter.SplitAsync(_tmp.Sub("all"), 5, 0, _tmp.Sub("d"), Unlabeled, new DatasetWriterOptions { ShardSize = 60 });
        var truth = await DatasetSplitter.ReadWithheldAsync(Path.Combine(Unlabeled, DatasetSplitter.WithheldLabelsFileName));
        var ids = new List<string>();
        foreach (var shard in split.Unlabeled.ShardPaths(Unlabeled))
            ids.AddRange((await ImageShardReader.ReadIdsAndLabelsAsync(shard)).Select(r => r.Id));
        Assert.Equal(250, ids.Count);

        // The fake teacher: in class 9, the first 15 images (by id) go to class 0; in classes 0-8 the first 3 go to the next class;
        // the rest are right. Right images score 0.5-0.74; wrong ones 0.30-0.32, except class 0's, which top class 1 at 0.997-0.999.
        var scores = new Dictionary<string, ScoreRow>(StringComparer.Ordinal);
        foreach (var group in ids.GroupBy(id => truth[id]))
        {
            int y = group.Key, j = 0;
            foreach (var id in group.Order(StringComparer.Ordinal))
            {
                int top = y == 9 && j < 15 ? 0 : y < 9 && j < 3 ? y + 1 : y;
                float p = top == y ? 0.5f + 0.01f * j : y == 0 ? 0.999f - 0.001f * j : 0.30f + 0.001f * j;
                _images[id] = (y, top);
                scores[id] = new ScoreRow(id, [top, (top + 5) % Classes], [p, 0.05f]);
                j++;
            }
        }
        await WriteScoresAsync(ids.Select(id => scores[id]).ToList(), split.Unlabeled.Classes);
        await SelectFromScores.RunAsync(Scores, SelectionK, 1, Selection);
    }

    /// <summary>Two score shards in U's order and a scoring.json as 'streaming score' writes it.</summary>
    private async Task WriteScoresAsync(List<ScoreRow> rows, IReadOnlyList<string> classes)
    {
        Directory.CreateDirectory(Path.Combine(Scores, ScoringManifest.ScoresFolder));
        var shards = new List<ScoredShard>();
        for (int s = 0; s < 2; s++)
        {
            string file = Path.Combine(ScoringManifest.ScoresFolder, $"score-shard-{s:D5}.parquet");
            var part = rows.Skip(s * 125).Take(125).ToList();
            await ScoreShards.WriteAsync(Path.Combine(Scores, file), part);
            shards.Add(new ScoredShard($"shard-{s:D5}.parquet", file, part.Count, 0, Hashing.Sha256File(Path.Combine(Scores, file))));
        }
        var manifest = new ScoringManifest { Dataset = Unlabeled, TopP = 2, Batch = 64, Classes = classes, Shards = shards };
        File.WriteAllText(Path.Combine(Scores, ScoringManifest.FileName), JsonSerializer.Serialize(manifest));
    }

    public ValueTask DisposeAsync()
    {
        _tmp.Dispose();
        return ValueTask.CompletedTask;
    }

    private Task<SelectionReportSummary> Report(IReadOnlyList<int>? sweep = null) =>
        SelectionReport.WriteAsync(new SelectionReportInputs(Selection, Scores, Unlabeled, sweep), Out);

    private static int[] ShownRanks(int count) => Enumerable.Range(1, count).Where(DhatStats.IsShownRank).ToArray();

    /// <summary>
    /// Cells drawn on a contact sheet, counted on the picture: the most runs of non-white pixels at least 0.6 of a
    /// cell long on any one row (each cell's frame is such a run; text never is, and cells are separated by white).
    /// </summary>
    private static int CountCells(SKBitmap sheet)
    {
        int most = 0;
        for (int y = 0; y < sheet.Height; y++)
        {
            int runs = 0, run = 0;
            for (int x = 0; x <= sheet.Width; x++)
            {
                bool ink = x < sheet.Width && sheet.GetPixel(x, y) is var p && Math.Min(p.Red, Math.Min(p.Green, p.Blue)) < 235;
                if (ink) { run++; continue; }
                if (run >= 0.6 * SelectionReport.Cell) runs++;
                run = 0;
            }
            most = Math.Max(most, runs);
        }
        return most;
    }

    private static bool HasRed(SKBitmap sheet)
    {
        for (int y = 0; y < sheet.Height; y++)
            for (int x = 0; x < sheet.Width; x++)
                if (sheet.GetPixel(x, y) is var p && p.Red > 180 && p.Green < 80 && p.Blue < 80) return true;
        return false;
    }

    private SKBitmap Png(string file)
    {
        string path = Path.Combine(Out, file);
        Assert.True(File.Exists(path), $"{file} was not written");
        var bitmap = SKBitmap.Decode(path);
        Assert.NotNull(bitmap);
        Assert.True(bitmap.Width > 100 && bitmap.Height > 100, $"{file} is {bitmap.Width} x {bitmap.Height}");
        return bitmap;
    }

    [Fact]
    public async Task Report_WithWithheldLabels_MeasuresTheConstructedPrecision_AndDrawsEveryPart()
    {
        var summary = await Report();

        // D-hat is all of U, each image under its pseudo-label: precision is exactly the share of right pseudo-labels.
        int right = _images.Values.Count(v => v.Top == v.Truth);
        Assert.Equal(208, right);
        Assert.True(summary.LabelsKnown);
        Assert.Equal(250, summary.Selected);
        Assert.Equal(right / 250.0, summary.Precision);
        for (int c = 0; c < Classes; c++)
        {
            var mine = _images.Values.Where(v => v.Top == c).ToList();
            Assert.Equal(mine.Count, summary.Counts[c]);
            Assert.Equal(mine.Count(v => v.Truth == c) / (double)mine.Count, summary.ClassPrecision[c]);
        }
        Assert.Equal(new[] { 39, 28, 26, 24, 24, 26, 28, 25, 22, 8 }, summary.Counts);

        // Contact sheets: one per class, a cell per rank 1, 10, 100, ... that the class has, on the summary and on the picture.
        Assert.Equal(Classes, summary.ContactSheets.Count);
        for (int c = 0; c < Classes; c++)
        {
            var sheet = summary.ContactSheets[c];
            Assert.Equal($"contact-{c:D2}.png", sheet.File);
            Assert.Equal(ShownRanks(summary.Counts[c]), sheet.Cells.Select(x => x.Rank));
            using var png = Png(sheet.File);
            Assert.Equal(sheet.Cells.Count, CountCells(png));
        }
        Assert.Equal(2, summary.ContactSheets[0].Cells.Count);
        Assert.Single(summary.ContactSheets[9].Cells);
        // Class 1's best image is a class-0 image (the fake teacher's confident mistake): framed red; class 2's shown images are right.
        Assert.Equal(0, summary.ContactSheets[1].Cells[0].TrueClass);
        Assert.All(summary.ContactSheets[2].Cells, x => Assert.Equal(2, x.TrueClass));
        using (var wrong = Png("contact-01.png")) Assert.True(HasRed(wrong));
        using (var fine = Png("contact-02.png")) Assert.False(HasRed(fine));

        // The K sweep: 1, 3, 10 (K x 10 classes <= 250 rows) and the selection's K, where it must agree with D-hat.
        Assert.Equal(new[] { 1, 3, 10, SelectionK }, summary.KSweep.Select(p => p.K));
        Assert.Equal(summary.Precision, summary.KSweep[^1].Precision);
        Assert.Equal(250, summary.KSweep[^1].Selected);
        Assert.Equal(9 / 10.0, summary.KSweep[0].Precision); // every class's best is right but class 1's
        Assert.Equal(27 / 30.0, summary.KSweep[1].Precision); // class 1's best three are all wrong
        Assert.Equal(summary.MeanScore!.Value, summary.KSweep[^1].MeanScore!.Value, 6);

        using (Png(SelectionReport.BalanceFile)) { }
        using (Png(SelectionReport.SweepFile)) { }
        string html = File.ReadAllText(Path.Combine(Out, SelectionReport.PageFile));
        foreach (var file in summary.Files.Where(f => f.EndsWith(".png", StringComparison.Ordinal)))
            Assert.Contains($"src=\"{file}\"", html);
        Assert.Contains("83.2%", html);
        Assert.Equal(Classes + 3, summary.Files.Count);
        Assert.Empty(summary.Notes);

        // The summary serializes for a pipeline's JSON.
        var json = JsonDocument.Parse(JsonSerializer.Serialize(summary)).RootElement;
        Assert.Equal(0.832, json.GetProperty("precision").GetDouble(), 9);
        Assert.Equal(4, json.GetProperty("k_sweep").GetArrayLength());

        // The page in a real browser (Debian's chromium): every image loads, every link resolves, no console error.
        await using var browser = await BrowserPage.OpenAsync(new Uri(Path.Combine(Out, SelectionReport.PageFile)).AbsoluteUri);
        var page = browser.Page;
        var errors = browser.Errors;
        await page.WaitForLoadStateAsync(Microsoft.Playwright.LoadState.NetworkIdle);
        int images = await page.EvaluateAsync<int>("() => document.images.length");
        Assert.True(images >= Classes + 2, $"{images} images on the page");
        // The contact sheets load lazily (as a reader scrolls): load them all, then every one must have decoded.
        await page.EvaluateAsync("() => { for (const i of document.images) i.loading = 'eager'; }");
        await page.WaitForFunctionAsync("() => Array.from(document.images).every(i => i.complete)", null, new() { Timeout = 15_000 });
        var broken = await page.EvaluateAsync<string[]>("() => Array.from(document.images).filter(i => i.naturalWidth === 0).map(i => i.src)");
        Assert.True(broken.Length == 0, "images that did not load: " + string.Join(", ", broken));
        var links = await page.EvaluateAsync<string[]>("() => Array.from(document.querySelectorAll('a[href]')).map(a => a.href)");
        foreach (var link in links.Where(l => l.StartsWith("file:", StringComparison.Ordinal)))
            Assert.True(File.Exists(new Uri(link).LocalPath) || Directory.Exists(new Uri(link).LocalPath), $"the link {link} resolves to nothing");
        Assert.Empty(errors);
        await browser.ScreenshotAsync("report.png", fullPage: false);
    }

    [Fact]
    public async Task Report_WithoutWithheldLabels_ShowsScoresAndSaysSo()
    {
        File.Delete(Path.Combine(Unlabeled, DatasetSplitter.WithheldLabelsFileName));
        var summary = await Report(sweep: [5, 2, 5]);
        Assert.False(summary.LabelsKnown);
        Assert.Null(summary.Precision);
        Assert.All(summary.ClassPrecision, Assert.Null);
        Assert.Equal(new[] { 2, 5 }, summary.KSweep.Select(p => p.K));
        Assert.All(summary.KSweep, p => Assert.Null(p.Precision));
        Assert.All(summary.KSweep, p => Assert.InRange(p.MeanScore!.Value, 0.3, 1.0));
        Assert.Contains(summary.Notes, n => n.Contains("withheld labels", StringComparison.Ordinal));
        Assert.All(summary.ContactSheets.SelectMany(s => s.Cells), x => Assert.Null(x.TrueClass));
        using (var sheet = Png("contact-01.png")) Assert.False(HasRed(sheet)); // nothing is known to be wrong
        using (Png(SelectionReport.SweepFile)) { }
        Assert.Contains("precision is not measured", File.ReadAllText(Path.Combine(Out, SelectionReport.PageFile)));
    }

    [Fact]
    public async Task Report_OnScoresTheSelectionWasNotMadeFrom_Fails()
    {
        string path = Path.Combine(Scores, ScoringManifest.FileName);
        var manifest = JsonSerializer.Deserialize<ScoringManifest>(File.ReadAllText(path))!;
        File.WriteAllText(path, JsonSerializer.Serialize(manifest with { Shards = [manifest.Shards[0] with { Sha256 = new string('0', 64) }, manifest.Shards[1]] }));
        var e = await Assert.ThrowsAsync<StreamingException>(() => Report());
        Assert.Contains("other scores", e.Message);
        await Assert.ThrowsAsync<StreamingException>(() => SelectionReport.WriteAsync(new SelectionReportInputs(_tmp.Sub("nowhere"), Scores, Unlabeled), Out));
    }

    [Theory]
    [InlineData(0, new int[0])]
    [InlineData(1, new[] { 1 })]
    [InlineData(9, new[] { 1 })]
    [InlineData(10, new[] { 1, 10 })]
    [InlineData(999, new[] { 1, 10, 100 })]
    [InlineData(12345, new[] { 1, 10, 100, 1000, 10000 })]
    public void ContactSheet_ShowsRanks_OneTenHundred(int count, int[] ranks) => Assert.Equal(ranks, ShownRanks(count));

    [Fact]
    public void SweepKs_DefaultIsGeometric_UpToTheRowsScored_PlusTheSelectionsK()
    {
        Assert.Equal(new[] { 1, 3, 10, 30, 100, 300, 1000, 3000 }, SelectionReport.SweepKs(null, 59_000, 10, 1000));
        Assert.Equal(new[] { 1, 3, 10, 30, 100, 300, 1000, 3000, 4500 }, SelectionReport.SweepKs(null, 59_000, 10, 4500));
        Assert.Equal(new[] { 1, 3, 10, 60 }, SelectionReport.SweepKs(null, 250, 10, 60));
        Assert.Equal(new[] { 2, 5 }, SelectionReport.SweepKs([5, 2, 5], 250, 10, 60));
        Assert.Throws<StreamingException>(() => SelectionReport.SweepKs([0], 250, 10, 60));
    }
}
