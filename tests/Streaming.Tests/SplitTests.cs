using Streaming.Core;
using Streaming.Core.Datasets;
using Streaming.Core.Ingest;
using Xunit;

namespace Streaming.Tests;

public class SplitTests : IAsyncLifetime
{
    private readonly TempDir _tmp = new();
    private string Dataset => _tmp.Sub("all");

    public async ValueTask InitializeAsync() =>
        await Ingestor.RunAsync(ImageSource.Open(TestPaths.MiniTar), Dataset, new IngestOptions { Writer = new DatasetWriterOptions { ShardSize = 100 } });

    public ValueTask DisposeAsync()
    {
        _tmp.Dispose();
        return ValueTask.CompletedTask;
    }

    private async Task<SplitResult> Split(string name, int n, ulong seed) =>
        await DatasetSplitter.SplitAsync(Dataset, n, seed, _tmp.Sub(name + "-d"), _tmp.Sub(name + "-u"));

    [Fact]
    public async Task Distractors_AreCropsOfPhotos_AddedToU_WithNoClass_AndReproducible()
    {
        var a = await DatasetSplitter.SplitAsync(Dataset, 10, 7, _tmp.Sub("x-d"), _tmp.Sub("x-u"), distractors: new DistractorOptions(TestPaths.Photos, 40));
        Assert.Equal(100, a.Labeled.Rows);
        Assert.Equal(240, a.Unlabeled.Rows);
        Assert.Equal("40", a.Unlabeled.Parameters["distractors"]);
        var u = await IngestTests.ReadAll(_tmp.Sub("x-u"));
        var crops = u.Where(r => Distractors.IsDistractor(r.Id)).ToList();
        Assert.Equal(40, crops.Count);
        var truth = await DatasetSplitter.ReadWithheldAsync(Path.Combine(_tmp.Sub("x-u"), a.Unlabeled.WithheldLabelsFile!));
        Assert.Equal(240, truth.Count);
        Assert.All(crops, r => Assert.Equal(DatasetSplitter.NoClass, truth[r.Id]));
        Assert.All(u.Where(r => !Distractors.IsDistractor(r.Id)), r => Assert.InRange(truth[r.Id], 0, 9));
        // The garments' size and channels, from every photo in turn, and not blank.
        var photos = Directory.GetFiles(TestPaths.Photos).Select(Path.GetFileName).ToHashSet();
        foreach (var r in crops)
        {
            var check = Streaming.Core.Decode.ImageDecoder.Check(r.Image);
            Assert.Equal((28, 28), (check.Width, check.Height));
            Assert.Equal(1, Streaming.Core.Decode.ImageDecoder.NativeChannels(r.Image));
            Assert.Contains(r.Source, photos);
        }
        Assert.Equal(Math.Min(40, photos.Count), crops.Select(r => r.Source).Distinct().Count());
        Assert.True(crops.Select(r => r.Sha256).Distinct().Count() > 35, "crops differ from one another");
        // Same photos, count and seed: the same images.
        var b = await DatasetSplitter.SplitAsync(Dataset, 10, 7, _tmp.Sub("y-d"), _tmp.Sub("y-u"), distractors: new DistractorOptions(TestPaths.Photos, 40));
        Assert.Equal(a.Unlabeled.Shards.Select(s => s.Sha256), b.Unlabeled.Shards.Select(s => s.Sha256));
    }

    [Fact]
    public async Task AllLabeled_WithASeparateUnlabeledCollection_PutsTrainInD_AndTheCollectionInU()
    {
        // The folder sample holds 200 of the tar's images under other ids (their file names): a separate collection.
        await Ingestor.RunAsync(ImageSource.Open(TestPaths.MiniFolder), _tmp.Sub("extra"), new IngestOptions { IdPrefix = "yfcc/" });
        var r = await DatasetSplitter.SplitAsync(Dataset, DatasetSplitter.AllLabeled, 0, _tmp.Sub("all-d"), _tmp.Sub("all-u"), extraUnlabeled: _tmp.Sub("extra"));
        Assert.Equal(300, r.Labeled.Rows);
        Assert.Equal(200, r.Unlabeled.Rows);
        Assert.Equal(0, r.Unlabeled.Labeled);
        Assert.Equal("all", r.Labeled.Parameters["labeled_per_class"]);
        var u = await IngestTests.ReadAll(_tmp.Sub("all-u"));
        Assert.All(u, x => Assert.StartsWith("yfcc/", x.Id));

        // Ids shared with the split dataset would merge two images: refused.
        await Ingestor.RunAsync(ImageSource.Open(TestPaths.MiniTar), _tmp.Sub("same"));
        var e = await Assert.ThrowsAsync<StreamingException>(() =>
            DatasetSplitter.SplitAsync(Dataset, 10, 0, _tmp.Sub("c-d"), _tmp.Sub("c-u"), extraUnlabeled: _tmp.Sub("same")));
        Assert.Contains("also in", e.Message);
    }

    [Fact]
    public async Task Split_IsBalanced_Disjoint_AndComplete()
    {
        var result = await Split("a", 10, 7);
        var labelsByClass = result.Labeled.ClassCounts;
        Assert.All(labelsByClass, c => Assert.Equal(10, c));
        Assert.Equal(100, result.Labeled.Rows);
        Assert.Equal(200, result.Unlabeled.Rows);
        Assert.Equal(0, result.Unlabeled.Labeled);

        var all = await IngestTests.ReadAll(Dataset);
        var d = await IngestTests.ReadAll(_tmp.Sub("a-d"));
        var u = await IngestTests.ReadAll(_tmp.Sub("a-u"));
        Assert.All(u, r => Assert.Null(r.Label));
        Assert.Empty(d.Select(r => r.Id).Intersect(u.Select(r => r.Id)));
        Assert.Equal(all.Select(r => r.Id).Order(StringComparer.Ordinal), d.Concat(u).Select(r => r.Id).Order(StringComparer.Ordinal));
        var truth = all.ToDictionary(r => r.Id, r => r.Label);
        Assert.All(d, r => Assert.Equal(truth[r.Id], r.Label));

        // The withheld side file holds exactly U's true labels.
        var withheld = await DatasetSplitter.ReadWithheldAsync(Path.Combine(_tmp.Sub("a-u"), result.Unlabeled.WithheldLabelsFile!));
        Assert.Equal(u.Count, withheld.Count);
        Assert.All(u, r => Assert.Equal(truth[r.Id], withheld[r.Id]));
    }

    /// <summary>--keep-labels: the rest is a labeled held-out set (the transfer study's digits test set), with no side file.</summary>
    [Fact]
    public async Task KeepLabels_TheRestIsALabeledHeldOutSet()
    {
        var result = await DatasetSplitter.SplitAsync(Dataset, 10, 7, _tmp.Sub("k-d"), _tmp.Sub("k-u"), keepLabels: true);
        Assert.Equal(200, result.Unlabeled.Rows);
        Assert.Equal(200, result.Unlabeled.Labeled);
        Assert.Null(result.Unlabeled.WithheldLabelsFile);
        Assert.False(File.Exists(Path.Combine(_tmp.Sub("k-u"), DatasetSplitter.WithheldLabelsFileName)));
        var truth = (await IngestTests.ReadAll(Dataset)).ToDictionary(r => r.Id, r => r.Label);
        var held = await IngestTests.ReadAll(_tmp.Sub("k-u"));
        Assert.All(held, r => Assert.Equal(truth[r.Id], r.Label));
        // D is the same as a plain split's with the same seed.
        await Split("plain", 10, 7);
        Assert.Equal((await IngestTests.ReadAll(_tmp.Sub("plain-d"))).Select(r => r.Id), (await IngestTests.ReadAll(_tmp.Sub("k-d"))).Select(r => r.Id));
        await Assert.ThrowsAsync<StreamingException>(() => DatasetSplitter.SplitAsync(Dataset, 10, 7, _tmp.Sub("k2-d"), _tmp.Sub("k2-u"),
            distractors: new DistractorOptions(TestPaths.Photos, 4), keepLabels: true));
    }

    [Fact]
    public async Task Split_SameSeed_IsByteIdentical_OtherSeed_Differs()
    {
        var first = await Split("s1", 5, 42);
        var second = await Split("s2", 5, 42);
        var other = await Split("s3", 5, 43);
        Assert.Equal(first.Labeled.Shards.Select(s => s.Sha256), second.Labeled.Shards.Select(s => s.Sha256));
        Assert.Equal(first.Unlabeled.Shards.Select(s => s.Sha256), second.Unlabeled.Shards.Select(s => s.Sha256));
        Assert.Equal(File.ReadAllBytes(Path.Combine(_tmp.Sub("s1-u"), DatasetSplitter.WithheldLabelsFileName)),
                     File.ReadAllBytes(Path.Combine(_tmp.Sub("s2-u"), DatasetSplitter.WithheldLabelsFileName)));
        var ids1 = (await IngestTests.ReadAll(_tmp.Sub("s1-d"))).Select(r => r.Id).ToHashSet();
        var ids3 = (await IngestTests.ReadAll(_tmp.Sub("s3-d"))).Select(r => r.Id).ToHashSet();
        Assert.False(ids1.SetEquals(ids3));
        Assert.Equal("43", other.Labeled.Parameters["seed"]);
    }

    [Fact]
    public async Task Split_DoesNotDependOnShardLayout()
    {
        // The same images in shards of another size (so another order of reading) give the same D.
        await Ingestor.RunAsync(ImageSource.Open(TestPaths.MiniTar), _tmp.Sub("all7"), new IngestOptions { Writer = new DatasetWriterOptions { ShardSize = 7 } });
        var a = await Split("l1", 8, 3);
        var b = await DatasetSplitter.SplitAsync(_tmp.Sub("all7"), 8, 3, _tmp.Sub("l2-d"), _tmp.Sub("l2-u"));
        var idsA = (await IngestTests.ReadAll(_tmp.Sub("l1-d"))).Select(r => r.Id).Order(StringComparer.Ordinal);
        var idsB = (await IngestTests.ReadAll(_tmp.Sub("l2-d"))).Select(r => r.Id).Order(StringComparer.Ordinal);
        Assert.Equal(idsA, idsB);
        Assert.Equal(a.Labeled.ClassCounts, b.Labeled.ClassCounts);
    }

    [Fact]
    public async Task Split_TooManyPerClass_FailsAndLeavesNothing()
    {
        var e = await Assert.ThrowsAsync<StreamingException>(() => Split("big", 1000, 0));
        Assert.Contains("fewer than --labeled-per-class 1000", e.Message);
        Assert.False(Directory.Exists(_tmp.Sub("big-d")));
        Assert.False(Directory.Exists(_tmp.Sub("big-u")));
    }

    [Fact]
    public async Task Split_OfUnlabeledData_Fails()
    {
        await Ingestor.RunAsync(ImageSource.Open(TestPaths.Photos), _tmp.Sub("photos"));
        var e = await Assert.ThrowsAsync<StreamingException>(() => DatasetSplitter.SplitAsync(_tmp.Sub("photos"), 1, 0, _tmp.Sub("p-d"), _tmp.Sub("p-u")));
        Assert.Contains("no labels", e.Message);
    }
}
