using Streaming.Core.Decode;
using Streaming.Core.Ingest;
using Streaming.Core.Loading;
using Streaming.Models.IO;
using Streaming.Models.Training;
using Streaming.Models.Loading;
using Streaming.Models.Zoo;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Streaming.Tests;

public class ScheduleTests
{
    [Fact]
    public void Pretrain_HalvesThirteenTimes_AtEqualSteps()
    {
        var s = new LrSchedule(ScheduleKind.Pretrain, 0.4, 1400);
        Assert.Equal(0.4, s.At(0));
        Assert.Equal(0.4, s.At(99));
        Assert.Equal(0.2, s.At(100));
        Assert.Equal(0.1, s.At(250));
        Assert.Equal(0.4 / 8192, s.At(1300), 12);
        Assert.Equal(0.4 / 8192, s.At(1399), 12);
        Assert.Equal(0.4 / 8192, s.At(5000), 12);
    }

    [Fact]
    public void Finetune_DropsByTenThreeTimes()
    {
        var s = new LrSchedule(ScheduleKind.Finetune, 1.0, 400);
        Assert.Equal(1.0, s.At(99));
        Assert.Equal(0.1, s.At(100), 12);
        Assert.Equal(0.01, s.At(200), 12);
        Assert.Equal(0.001, s.At(300), 12);
        Assert.Equal(0.001, s.At(399), 12);
    }

    [Fact]
    public void Cosine_AndWarmup()
    {
        var s = new LrSchedule(ScheduleKind.Cosine, 1.0, 1000, WarmupImages: 100);
        Assert.Equal(0.01, s.At(0), 12);
        Assert.Equal(0.5, s.At(49), 12);
        Assert.Equal(1.0, s.At(99), 12);
        Assert.Equal(0.5, s.At(500), 12);
        Assert.Equal(0.0, s.At(1000), 12);
    }

    [Fact]
    public void LinearScalingRule()
    {
        Assert.Equal(0.1, LrSchedule.Scaled(0.1, 256));
        Assert.Equal(0.05, LrSchedule.Scaled(0.1, 128));
        Assert.Equal(0.00025 * 4, LrSchedule.Scaled(0.00025, 1024));
    }
}

[Collection(nameof(ProcessState))]
public class OptimizerAndIoTests
{
    [Fact]
    public void Sgd_MatchesTorchOptimSgd()
    {
        manual_seed(1);
        using var a = ModelZoo.Create("cnn-small", 3, 1);
        using var b = ModelZoo.Create("cnn-small", 3, 1);
        b.load_state_dict(a.state_dict());
        using var mine = new Sgd(a, 0.9, 1e-3);
        var reference = optim.SGD(b.parameters(), 0.05, momentum: 0.9, weight_decay: 1e-3);
        manual_seed(2);
        for (int step = 0; step < 4; step++)
        {
            using var scope = NewDisposeScope();
            var x = randn(4, 1, 16, 16);
            var y = tensor(new long[] { 0, 1, 2, 1 });
            mine.ZeroGrad();
            nn.functional.cross_entropy(a.forward(x), y).backward();
            mine.Step(0.05);
            reference.zero_grad();
            nn.functional.cross_entropy(b.forward(x), y).backward();
            reference.step();
        }
        var sa = a.state_dict();
        foreach (var (name, t) in b.state_dict())
            Assert.True(t.allclose(sa[name], rtol: 1e-5, atol: 1e-6), name);
    }

    [Fact]
    public void SafeTensors_RoundTrip_KeepsDtypesShapesAndMetadata()
    {
        using var tmp = new TempDir();
        var tensors = new Dictionary<string, Tensor>
        {
            ["w"] = arange(12, dtype: float32).reshape(3, 4),
            ["n"] = tensor(7L),
            ["b"] = tensor(new byte[] { 1, 2, 3 }),
        };
        string path = tmp.Sub("x.safetensors");
        SafeTensors.Save(path, tensors, new Dictionary<string, string> { ["k"] = "v" });
        var (back, meta) = SafeTensors.Load(path);
        Assert.Equal("v", meta["k"]);
        foreach (var (k, t) in tensors)
        {
            Assert.Equal(t.dtype, back[k].dtype);
            Assert.Equal(t.shape, back[k].shape);
            Assert.True(t.eq(back[k]).all().item<bool>(), k);
        }
        // The header is 8-byte aligned JSON and names sort, so equal tensors make equal files.
        SafeTensors.Save(tmp.Sub("y.safetensors"), tensors, new Dictionary<string, string> { ["k"] = "v" });
        Assert.Equal(File.ReadAllBytes(path), File.ReadAllBytes(tmp.Sub("y.safetensors")));
    }

    [Fact]
    public void ModelFile_RoundTrip_RebuildsTheSameModel()
    {
        using var tmp = new TempDir();
        manual_seed(3);
        using var model = ModelZoo.Create("resnet20", 10, 1);
        var spec = new ModelSpec("resnet20", 10, 1, 28, [0.3f], [0.35f], Enumerable.Range(0, 10).Select(i => $"c{i}").ToArray());
        ModelFile.Save(tmp.Sub("m.safetensors"), model, spec);
        var (loaded, back) = ModelFile.Load(tmp.Sub("m.safetensors"));
        using (loaded)
        {
            Assert.Equal(spec.Arch, back.Arch);
            Assert.Equal(spec.Classes, back.Classes);
            Assert.Equal(spec.Mean, back.Mean);
            model.eval();
            loaded.eval();
            using var x = randn(2, 1, 28, 28);
            Assert.True(model.forward(x).eq(loaded.forward(x)).all().item<bool>());
        }
    }

    [Fact]
    public void ModelFile_WrongArchitecture_FailsClearly()
    {
        using var tmp = new TempDir();
        using var model = ModelZoo.Create("resnet20", 10, 1);
        ModelFile.Save(tmp.Sub("m.safetensors"), model, new ModelSpec("resnet20", 10, 1, 28, [0.5f], [0.5f], []));
        var e = Assert.Throws<Streaming.Core.StreamingException>(() =>
            ModelFile.Load(tmp.Sub("m.safetensors"), new ModelSpec("resnet32", 10, 1, 28, [0.5f], [0.5f], [])));
        Assert.Contains("do not fit", e.Message);
    }
}

public class LoaderTests : IAsyncLifetime
{
    private readonly TempDir _tmp = new();
    private string Data => _tmp.Sub("data");

    public async ValueTask InitializeAsync() =>
        await Ingestor.RunAsync(ImageSource.Open(TestPaths.MiniTar), Data, new IngestOptions { Writer = new() { ShardSize = 64 } });

    public ValueTask DisposeAsync()
    {
        _tmp.Dispose();
        return ValueTask.CompletedTask;
    }

    private static async Task<List<string>> Ids(EpochOrder order, long epoch, long skip = 0)
    {
        var ids = new List<string>();
        await foreach (var s in order.ReadAsync(epoch, skip)) ids.Add(s.Id);
        return ids;
    }

    [Fact]
    public async Task EpochOrder_IsAPermutation_DeterministicPerSeedAndEpoch()
    {
        var order = new EpochOrder(Data, seed: 5, bufferSize: 50);
        var e0 = await Ids(order, 0);
        Assert.Equal(300, e0.Count);
        Assert.Equal(300, e0.Distinct().Count());
        Assert.Equal(e0, await Ids(new EpochOrder(Data, seed: 5, bufferSize: 50), 0));
        Assert.NotEqual(e0, await Ids(order, 1));
        Assert.NotEqual(e0, await Ids(new EpochOrder(Data, seed: 6, bufferSize: 50), 0));
        Assert.Equal(e0.Skip(123), await Ids(order, 0, skip: 123));
        // Shuffled beyond one shard, and not in the dataset's order.
        Assert.True(e0.Take(64).Select(id => int.Parse(id[6..]) / 64).Distinct().Count() >= 2);
        Assert.NotEqual(e0.Order(StringComparer.Ordinal).Take(64), e0.Take(64));
    }

    [Fact]
    public void Augmentation_IsAFunctionOfSeedEpochAndId()
    {
        var png = File.ReadAllBytes(Directory.EnumerateFiles(TestPaths.MiniFolder, "*.png", SearchOption.AllDirectories).First());
        var p = new PreprocessOptions(28, 28, 1, ResizeMode.Stretch);
        var aug = AugmentationOptions.Default(28);
        float[] Run(ulong seed, long epoch, string id)
        {
            var t = new float[784];
            Augmentation.DecodeAugmented(png, p, aug, seed, epoch, id, t);
            return t;
        }
        Assert.Equal(Run(1, 2, "x"), Run(1, 2, "x"));
        var variants = Enumerable.Range(0, 12).Select(e => Run(1, e, "x")).ToList();
        Assert.True(variants.Select(v => string.Join(",", v.Take(784))).Distinct().Count() > 4);
        var plain = new float[784];
        ImageDecoder.DecodeToTensor(png, p, plain);
        Assert.Contains(variants, v => !v.SequenceEqual(plain));
    }

    [Fact]
    public void RandomResizedCrop_StaysFinite_ForPhotos()
    {
        var photo = File.ReadAllBytes(Path.Combine(TestPaths.Photos, "astronaut.jpg"));
        var p = new PreprocessOptions(64, 64, 3);
        var t = new float[p.TensorLength];
        for (int e = 0; e < 10; e++)
        {
            Augmentation.DecodeAugmented(photo, p, AugmentationOptions.Default(224), 0, e, "a", t);
            Assert.All(t, v => Assert.True(float.IsFinite(v)));
        }
    }

    private static LoaderOptions Options(int workers) => new()
    {
        Preprocess = new PreprocessOptions(28, 28, 1, ResizeMode.Stretch),
        Augment = AugmentationOptions.Default(28),
        Seed = 9,
        BatchSize = 32,
        Workers = workers,
        ShuffleBuffer = 100,
    };

    [Fact]
    public async Task BatchLoader_SameBatches_WhateverTheWorkers_AndFromAnyStartingBatch()
    {
        var one = new BatchLoader(Data, Options(1));
        var three = new BatchLoader(Data, Options(3));
        Assert.Equal(9, one.BatchesPerEpoch); // 300 / 32, the last partial batch dropped
        var a = new List<(float[], long[])>();
        await foreach (var b in one.ReadEpochAsync(2)) using (b) a.Add((b.Images.data<float>().ToArray(), b.Labels.data<long>().ToArray()));
        var c = new List<(float[], long[])>();
        await foreach (var b in three.ReadEpochAsync(2)) using (b) c.Add((b.Images.data<float>().ToArray(), b.Labels.data<long>().ToArray()));
        Assert.Equal(9, a.Count);
        for (int i = 0; i < a.Count; i++)
        {
            Assert.Equal(a[i].Item1, c[i].Item1);
            Assert.Equal(a[i].Item2, c[i].Item2);
        }
        int k = 0;
        await foreach (var b in one.ReadEpochAsync(2, firstBatch: 5))
            using (b)
            {
                Assert.Equal(5 + k, b.IndexInEpoch);
                Assert.Equal(a[5 + k].Item1, b.Images.data<float>().ToArray());
                k++;
            }
        Assert.Equal(4, k);
    }

    [Fact]
    public async Task BatchLoader_Balanced_LabelsMatchTheData()
    {
        var loader = new BatchLoader(Data, Options(2) with { DropLast = false, Shuffle = false });
        var counts = new long[10];
        long n = 0;
        await foreach (var b in loader.ReadEpochAsync(0))
            using (b)
                foreach (var l in b.Labels.data<long>().ToArray()) { counts[l]++; n++; }
        Assert.Equal(300, n);
        Assert.Equal(loader.Manifest.ClassCounts, counts);
    }
}

public class ShiftTests
{
    [Theory]
    [InlineData(2, 0)]
    [InlineData(-2, 0)]
    [InlineData(0, 3)]
    [InlineData(0, -3)]
    [InlineData(1, -1)]
    public void PadAndCrop_MovesPixels_AndFillsWithBlack(int dy, int dx)
    {
        // A 6x6 image of distinct values, shifted by (dy, dx): every pixel lands where it should.
        var pixels = Enumerable.Range(0, 36).Select(i => (byte)(i * 7)).ToArray();
        var png = PngEncoder.Encode(pixels, 6, 6, 1);
        var p = new PreprocessOptions(6, 6, 1, ResizeMode.Stretch, [0f], [1f]);
        var plain = new float[36];
        ImageDecoder.DecodeToTensor(png, p, plain);
        var shifted = (float[])plain.Clone();
        Augmentation.Shift(shifted, 1, 6, 6, dy, dx, p);
        for (int y = 0; y < 6; y++)
            for (int x = 0; x < 6; x++)
            {
                int sy = y - dy, sx = x - dx;
                float expected = sy is >= 0 and < 6 && sx is >= 0 and < 6 ? plain[sy * 6 + sx] : 0f;
                Assert.Equal(expected, shifted[y * 6 + x]);
            }
    }
}
