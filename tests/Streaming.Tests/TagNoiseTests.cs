using Streaming.Core.Datasets;
using Streaming.Core.Ingest;
using Streaming.Core.Loading;
using Streaming.Core.Tags;
using Streaming.Models.Training;
using Xunit;

namespace Streaming.Tests;

/// <summary>The tag-noise model of issue 20 (hashtag-like weak labels from true labels): its defaults' quality, its seeding and its confusions.</summary>
[Collection(nameof(ProcessState))]
public class TagNoiseTests
{
    private static IEnumerable<(string, int)> Balanced(int n, int classes) => Enumerable.Range(0, n).Select(i => ($"img-{i:D5}", i % classes));

    [Fact]
    public void Defaults_GiveThePrecisionAndRecallTheyPromise_AndTailClassesAreTaggedLess()
    {
        var model = new TagNoiseModel { Seed = 1 };
        var q = model.Measure(Balanced(20_000, 10), 10);
        Assert.True(q.Precision is >= 0.60 and <= 0.70 && q.Recall is >= 0.45 and <= 0.55, $"precision {q.Precision:F3}, recall {q.Recall:F3}, tags an image {(double)q.Tags / q.Images:F3}");
        // 10% get no tag by the first draw; with those whose class was not tagged and who drew no wrong tag, about 40%.
        Assert.InRange((double)q.Tagged / q.Images, 0.55, 0.65);
        // Recall by class follows the Zipf ranks: the head class is tagged far more often than the tail one.
        var ranks = model.Ranks(10);
        int head = Array.IndexOf(ranks, 0), tail = Array.IndexOf(ranks, 9);
        Assert.True(q.RecallByClass[head] > 1.8 * q.RecallByClass[tail], $"head {q.RecallByClass[head]:F3}, tail {q.RecallByClass[tail]:F3}");
        Assert.Equal(Enumerable.Range(0, 10), ranks.Order());
    }

    [Fact]
    public void Tags_AreAFunctionOfSeedAndId_NotOfOrder()
    {
        var model = new TagNoiseModel { Seed = 7 };
        var forward = Balanced(500, 10).Select(x => model.Tags(x.Item1, x.Item2, 10)).ToList();
        var backward = Balanced(500, 10).Reverse().Select(x => model.Tags(x.Item1, x.Item2, 10)).Reverse().ToList();
        Assert.Equal(forward, backward);
        var other = Balanced(500, 10).Select(x => (model with { Seed = 8 }).Tags(x.Item1, x.Item2, 10)).ToList();
        Assert.NotEqual(forward, other);
        Assert.All(forward, t => Assert.Equal(t.Order().Distinct(), t));
    }

    [Fact]
    public void WrongTags_GoMostlyToTheClassesTheConfusionMatrixNames()
    {
        // Class 0 is mistaken for class 1 only; every other row is uniform.
        var confusion = Enumerable.Range(0, 10).Select(y => (IReadOnlyList<double>)Enumerable.Range(0, 10).Select(c => y == 0 ? (c == 1 ? 50.0 : c == 0 ? 900.0 : 0.0) : 1.0).ToList()).ToList();
        var model = new TagNoiseModel { Seed = 3, Confusion = confusion, WrongTagsMean = 1.0 };
        var wrong = Enumerable.Range(0, 5_000).SelectMany(i => model.Tags($"zero-{i}", 0, 10)).Where(t => t != 0).ToList();
        double toOne = wrong.Count(t => t == 1) / (double)wrong.Count;
        Assert.InRange(toOne, 0.7, 0.9); // 80% from the matrix (all to 1) + 20% uniform (1 in 9 of them to 1), less merged duplicates
        Assert.Throws<ArgumentOutOfRangeException>(() => model.Tags("x", 10, 10));
    }

    /// <summary>
    /// From U's withheld labels to W and its tags as soft targets, which train reads: the paper's weakly supervised loss
    /// (the target spread evenly over an image's tags). The command writes the same.
    /// </summary>
    [Fact]
    public async Task WeakLabels_OfU_AreWAndSoftTargets_ThatTrainReads()
    {
        using var tmp = new TempDir();
        await Ingestor.RunAsync(ImageSource.Open(TestPaths.MiniTar), tmp.Sub("all"), new IngestOptions());
        await DatasetSplitter.SplitAsync(tmp.Sub("all"), 5, 1, tmp.Sub("d"), tmp.Sub("u"));
        var model = new TagNoiseModel { Seed = 2 };
        var result = await WeakLabels.MakeAsync(tmp.Sub("u"), tmp.Sub("weak"), model);
        var u = DatasetManifest.Load(tmp.Sub("u"));
        var withheld = await DatasetSplitter.ReadWithheldAsync(Path.Combine(tmp.Sub("u"), u.WithheldLabelsFile!));
        Assert.Equal(u.Rows, result.Images);
        var w = DatasetManifest.Load(result.Dataset);
        Assert.Equal(result.Quality.Tagged, w.Rows);
        Assert.Equal(w.Rows, w.Labeled);
        var soft = await SoftTargets.LoadAsync(result.Tags, result.Dataset);
        var target = new float[10];
        foreach (var (id, y) in withheld.Take(50))
        {
            var tags = model.Tags(id, y, 10);
            if (tags.Length == 0) continue;
            soft.Fill(id, target);
            for (int c = 0; c < 10; c++) Assert.Equal(tags.Contains(c) ? 1f / tags.Length : 0f, target[c], 1e-6f);
        }
        using (var report = System.Text.Json.JsonDocument.Parse(File.ReadAllText(tmp.Sub("weak/tags.json"))))
            Assert.Equal(Math.Round(result.Quality.Precision, 4), report.RootElement.GetProperty("precision").GetDouble());
        // Balanced-with-tags (Table 5's row): select on the tags, random balance, gives K images a class, each tagged with it.
        await Streaming.Core.Selection.SelectFromScores.RunAsync(result.Tags, 4, 10, tmp.Sub("balanced"), Streaming.Core.Selection.BalanceMode.Random, 5);
        var picked = await Streaming.Core.Selection.SelectionImages.ReadPairsAsync(tmp.Sub("balanced"));
        Assert.NotEmpty(picked);
        Assert.All(picked.GroupBy(p => p.Class), g => Assert.InRange(g.Count(), 1, 4));
        Assert.All(picked, p => Assert.Contains(p.Class, model.Tags(p.Id, withheld[p.Id], 10)));
        // Pre-training on W with its tags runs (and starts from a uniform-ish loss, well above 0).
        var trained = await Trainer.RunAsync(new TrainOptions { Data = result.Dataset, Arch = "cnn-small", Out = tmp.Sub("weak-teacher"), Images = 64, BatchSize = 32, Threads = 2, SoftTargets = result.Tags });
        Assert.True(File.Exists(trained.ModelPath));

        var (code, output) = await CliProcess.RunAsync("tags", "--data", tmp.Sub("u"), "--out", tmp.Sub("weak-cli"), "--seed", "2");
        Assert.True(code == 0, output);
        Assert.Contains("precision", output);
        Assert.Equal(File.ReadAllText(tmp.Sub("weak/tags.json")), File.ReadAllText(tmp.Sub("weak-cli/tags.json")));
    }
}
