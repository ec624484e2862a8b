using System.Buffers;
using BenchmarkDotNet.Attributes;
using Streaming.Core.Decode;
using Streaming.Core.Selection;
using Streaming.Core.Shards;
using TorchSharp;
using static TorchSharp.torch;

namespace Streaming.Perf;

/// <summary>
/// The engine's hot paths one by one (decode is in <see cref="DecodeBenchmarks"/>): softmax + top-P on a batch of
/// logits, the selection core's offer and merge, score-shard and image-shard read and write, batch assembly.
/// Run: dotnet run -c Release --project perf/Streaming.Perf -- hot --inProcess
/// </summary>
/// <remarks>Run in process (<c>--inProcess</c>, as perf/run.sh does): a generated benchmark project would not carry libtorch's native package.</remarks>
[MemoryDiagnoser]
public class HotPathBenchmarks
{
    private Tensor _logits = null!;
    private ScoreRow[] _rows = [];
    private Selector _a = null!, _b = null!;
    private string _dir = "";
    private string _scoreShard = "", _imageShard = "";
    private float[][] _images = [];
    private readonly float[] _batch = new float[256 * 784];

    [GlobalSetup]
    public void Setup()
    {
        torch.set_num_threads(1);
        _logits = torch.randn(256, 1000, generator: new torch.Generator(1));
        var random = new Random(1);
        _rows = Enumerable.Range(0, 100_000).Select(i =>
        {
            var classes = Enumerable.Range(0, 10).Select(_ => random.Next(100)).Distinct().Take(5).ToArray();
            var probs = classes.Select(_ => (float)random.NextDouble()).OrderDescending().ToArray();
            return new ScoreRow($"img-{i:D7}", classes, probs);
        }).ToArray();
        _a = new Selector(100, 1000, 5);
        _b = new Selector(100, 1000, 5);
        for (int i = 0; i < _rows.Length; i++) (i % 2 == 0 ? _a : _b).Offer(_rows[i]);
        _dir = Path.Combine(Path.GetTempPath(), "streaming-hot-" + Environment.ProcessId);
        Directory.CreateDirectory(_dir);
        _scoreShard = Path.Combine(_dir, "scores.parquet");
        ScoreShards.WriteAsync(_scoreShard, _rows).GetAwaiter().GetResult();
        _imageShard = MakeImageShard();
        _images = Enumerable.Range(0, 256).Select(i => Enumerable.Range(0, 784).Select(j => (float)((i + j) % 255) / 255f).ToArray()).ToArray();
    }

    private string MakeImageShard()
    {
        string folder = Path.Combine(_dir, "images");
        Streaming.Core.Ingest.Ingestor.RunAsync(Streaming.Core.Ingest.ImageSource.Open(Path.Combine(RepoPaths.Samples, "fashion-mnist-mini.tar")), folder).GetAwaiter().GetResult();
        return Directory.EnumerateFiles(folder, "*.parquet").First();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _logits.Dispose();
        Directory.Delete(_dir, true);
    }

    [Benchmark(Description = "softmax + top-10 of 256x1000 logits (libtorch, 1 thread)")]
    public long TopP()
    {
        using var scope = torch.NewDisposeScope();
        var (values, indexes) = torch.nn.functional.softmax(_logits, 1).topk(10, dim: 1);
        return indexes.data<long>()[0] + (long)values.data<float>()[0];
    }

    [Benchmark(Description = "selector: offer, per row (100k rows; C=100, K=1000, P=5)", OperationsPerInvoke = 100_000)]
    public long Offer()
    {
        var s = new Selector(100, 1000, 5);
        foreach (var r in _rows) s.Offer(r);
        return s.Rows;
    }

    [Benchmark(Description = "selector: merge two halves (C=100, K=1000)")]
    public long Merge()
    {
        var s = new Selector(100, 1000, 5);
        s.Merge(_a);
        s.Merge(_b);
        return s.Rows;
    }

    [Benchmark(Description = "score shard: write, per row (100k rows, Snappy)", OperationsPerInvoke = 100_000)]
    public void WriteScores() => ScoreShards.WriteAsync(Path.Combine(_dir, "w.parquet"), _rows).GetAwaiter().GetResult();

    [Benchmark(Description = "score shard: read as columns, per row (100k rows)", OperationsPerInvoke = 100_000)]
    public async Task<long> ReadScores()
    {
        long n = 0;
        await foreach (var b in ScoreShards.ReadBatchesAsync(_scoreShard)) n += b.Count;
        return n;
    }

    [Benchmark(Description = "image shard: read every record")]
    public async Task<long> ReadImages()
    {
        long bytes = 0;
        await foreach (var r in ImageShardReader.ReadAsync(_imageShard)) bytes += r.Image.Length;
        return bytes;
    }

    [Benchmark(Description = "batch assembly: 256 28x28 tensors into one pooled buffer")]
    public float Assemble()
    {
        var buffer = ArrayPool<float>.Shared.Rent(256 * 784);
        for (int i = 0; i < _images.Length; i++) Array.Copy(_images[i], 0, buffer, (long)i * 784, 784);
        float x = buffer[1000];
        ArrayPool<float>.Shared.Return(buffer);
        return x;
    }
}
