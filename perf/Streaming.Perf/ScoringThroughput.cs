using Streaming.Core.Options;
using Streaming.Core.Scoring;
using System.Diagnostics;
using Streaming.Core.Compute;
using Streaming.Engine.Scoring;
using Streaming.Models;
using Streaming.Models.Compute;
using Streaming.Models.Teachers;

namespace Streaming.Perf;

/// <summary>
/// The engine's cost against bare inference, in one process (issue 17's goals):
/// <list type="number">
/// <item>`score` over the whole dataset, twice: images/s, and the managed memory it allocates an image in steady
/// state (GC.GetTotalAllocatedBytes between 20% and 90% of the images, so loading the teacher and writing the manifest
/// are not counted). The first pass is cold: code still at the JIT's first tier (which allocates what the optimizing
/// tier keeps on the stack; methods run once a shard never tier up in 6 shards), pools filling. The second pass is the
/// steady state of a long run, and the figure the goal is about; both are printed.</item>
/// <item>The ratio, interleaved shard by shard so that the machine's drift (large on a shared 2-core VM: the same
/// bare pass runs anywhere from 1,500 to 3,000 images/s from one minute to the next) falls on both sides alike: for
/// each shard, bare inference over its images decoded beforehand (teacher.TopK, same batch and threads: ready
/// tensors) and `score` of that shard alone (ScoreOptions.ShardOrder, a fresh output folder: the whole command's
/// work, the teacher's loading included), in alternating order. Ratio = total bare time / total score time.</item>
/// </list>
/// Usage: score TEACHER DATA [batch=256] [decode-workers=1] [threads=2] [rounds=2] [isa=native]
/// </summary>
internal static class ScoringThroughput
{
    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length < 2)
        {
            Console.Error.WriteLine("usage: Streaming.Perf score TEACHER DATA [batch=256] [decode-workers=1] [threads=2] [rounds=2] [isa=native]");
            return 2;
        }
        string teacherPath = args[0], data = args[1];
        int batch = args.Length > 2 ? int.Parse(args[2]) : 256;
        int workers = args.Length > 3 ? int.Parse(args[3]) : 1;
        int threads = args.Length > 4 ? int.Parse(args[4]) : 2;
        int rounds = args.Length > 5 ? int.Parse(args[5]) : 2;
        var isa = KernelIsas.Parse(args.Length > 6 ? args[6] : "native");
        Kernels.Configure(isa, threads);
        Console.WriteLine($"kernels: {Kernels.Current(threads)}");
        var device = TorchDevice.Resolve("cpu");
        var manifest = Streaming.Core.Datasets.DatasetManifest.Load(data);
        string output = Path.Combine(Path.GetTempPath(), $"streaming-perf-score-{Environment.ProcessId}");
        var options = new ScoreOptions
        {
            Teacher = teacherPath, Data = data, Out = output,
            Scoring = new ScoringSpec { Batch = batch, DecodeWorkers = workers, Compute = new ComputeSpec { Threads = threads, Isa = isa } },
        };

        // 1. The whole dataset, twice (cold, then warm), for images/s and the steady-state allocation.
        foreach (string pass in new[] { "cold", "warm" })
        {
            if (Directory.Exists(output)) Directory.Delete(output, true);
            long total = manifest.Rows;
            bool sample = Environment.GetEnvironmentVariable("STREAMING_PERF_ALLOCATIONS") == "1";
            AllocationSampler? sampler = null;
            long? startImages = null, startBytes = null, endImages = null, endBytes = null;
            var progress = new SyncProgress(p =>
            {
                if (startImages is null && p.Scored >= total / 5)
                {
                    (startImages, startBytes) = (p.Scored, GC.GetTotalAllocatedBytes(precise: true));
                    if (sample) sampler = new AllocationSampler(); // the steady state only, as the figure
                }
                if (endImages is null && p.Scored >= total * 9 / 10)
                {
                    (endImages, endBytes) = (p.Scored, GC.GetTotalAllocatedBytes(precise: true));
                    sampler?.Dispose();
                }
            });
            var result = await ScoreEngine.RunAsync(options with { Out = output }, progress);
            Directory.Delete(output, true);
            double perImage = endImages > startImages ? (double)(endBytes!.Value - startBytes!.Value) / (endImages.Value - startImages!.Value) : double.NaN;
            Console.WriteLine($"whole dataset, {pass}: score {result.ImagesScored:N0} images in {result.Elapsed.TotalSeconds:F1} s = {result.ImagesPerSecond:N0} images/s (batch {batch}, {threads} threads, {workers} decode workers)");
            Console.WriteLine($"whole dataset, {pass}: managed allocation in steady state: {perImage:N0} bytes an image (images {startImages:N0} to {endImages:N0})");
            Console.WriteLine("| stage | workers | items in | busy s | blocked s | starved s | utilization |");
            Console.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
            foreach (var st in result.Stages)
                Console.WriteLine($"| {st.Stage} | {st.Workers} | {st.ItemsIn:N0} | {st.BusySeconds:F1} | {st.BlockedSeconds:F1} | {st.StarvedSeconds:F1} | {st.Utilization:P0} |");
            Console.WriteLine($"bottleneck: {result.Bottleneck}");
            if (endImages > startImages) sampler?.Print(endImages.Value - startImages!.Value);
        }

        // 2. Shard by shard, bare inference and `score` interleaved.
        using var teacher = Teachers.Open(teacherPath, device);
        var classes = new int[batch * 10];
        var probs = new float[batch * 10];
        double bareTotal = 0, scoreTotal = 0;
        long images = 0;
        for (int shard = 0; shard < manifest.Shards.Count; shard++)
        {
            var batches = await PreDecodeAsync(data, manifest.Shards[shard].File, teacher.Spec.Preprocess(), batch);
            foreach (var (x, n) in batches.Take(2)) teacher.TopK(x, n, 10, classes, probs); // warm
            for (int round = 1; round <= rounds; round++)
            {
                double bare = 0, score = 0;
                async Task Score()
                {
                    if (Directory.Exists(output)) Directory.Delete(output, true);
                    var sw = Stopwatch.StartNew();
                    await ScoreEngine.RunAsync(options with { Out = output, ShardOrder = [shard] });
                    score = sw.Elapsed.TotalSeconds;
                }
                void Bare()
                {
                    var sw = Stopwatch.StartNew();
                    foreach (var (x, n) in batches) teacher.TopK(x, n, 10, classes, probs);
                    bare = sw.Elapsed.TotalSeconds;
                }
                if ((shard + round) % 2 == 0) { Bare(); await Score(); } else { await Score(); Bare(); }
                long rows = batches.Sum(b => (long)b.Count);
                Console.WriteLine($"shard {shard} round {round}: {rows:N0} images, bare inference {bare:F2} s ({rows / bare:N0} images/s), score {score:F2} s ({rows / score:N0} images/s), ratio {bare / score:F3}");
                bareTotal += bare;
                scoreTotal += score;
                images += rows;
            }
        }
        if (Directory.Exists(output)) Directory.Delete(output, true);
        Console.WriteLine($"interleaved: bare inference {images / bareTotal:N0} images/s, score {images / scoreTotal:N0} images/s, score / bare = {bareTotal / scoreTotal:F3} ({images:N0} images each)");
        return 0;
    }

    /// <summary>Every image of one shard decoded as the teacher expects, a buffer a batch.</summary>
    private static async Task<List<(float[] Pixels, int Count)>> PreDecodeAsync(string data, string shard, Streaming.Core.Decode.PreprocessOptions preprocess, int batch)
    {
        int length = preprocess.TensorLength;
        var batches = new List<(float[], int)>();
        float[] current = new float[batch * length];
        int count = 0;
        await foreach (var r in Streaming.Core.Shards.ImageShardReader.ReadAsync(Path.Combine(data, shard)))
        {
            Streaming.Core.Decode.ImageDecoder.DecodeToTensor(r.Image, preprocess, current.AsSpan(count * length, length));
            if (++count == batch)
            {
                batches.Add((current, count));
                (current, count) = (new float[batch * length], 0);
            }
        }
        if (count > 0) batches.Add((current, count));
        return batches;
    }

    /// <summary>
    /// Where the allocations go (STREAMING_PERF_ALLOCATIONS=1): the runtime's allocation-tick events, one per ~100 KB
    /// allocated, each naming the type that crossed the mark; the bytes per type are therefore estimates.
    /// </summary>
    private sealed class AllocationSampler : System.Diagnostics.Tracing.EventListener
    {
        private readonly Dictionary<string, long> _bytes = [];

        protected override void OnEventSourceCreated(System.Diagnostics.Tracing.EventSource source)
        {
            if (source.Name == "Microsoft-Windows-DotNETRuntime")
                EnableEvents(source, System.Diagnostics.Tracing.EventLevel.Verbose, (System.Diagnostics.Tracing.EventKeywords)0x1);
        }

        protected override void OnEventWritten(System.Diagnostics.Tracing.EventWrittenEventArgs e)
        {
            if (e.EventName is not { } name || !name.StartsWith("GCAllocationTick", StringComparison.Ordinal) || e.Payload is null) return;
            int t = e.PayloadNames!.IndexOf("TypeName"), a = e.PayloadNames.IndexOf("AllocationAmount64");
            string type = t >= 0 ? e.Payload[t] as string ?? "?" : "?";
            long amount = a >= 0 ? Convert.ToInt64(e.Payload[a]) : 100_000;
            lock (_bytes) _bytes[type] = _bytes.GetValueOrDefault(type) + amount;
        }

        public void Print(long images)
        {
            lock (_bytes)
                foreach (var (type, bytes) in _bytes.OrderByDescending(kv => kv.Value).Take(15))
                    Console.WriteLine($"  allocations ~{(double)bytes / images,8:N0} bytes an image: {type}");
        }
    }

    /// <summary>Reports on the caller's thread (System.Progress would post to the thread pool, late).</summary>
    private sealed class SyncProgress(Action<(long Scored, long Total, double Rate)> report) : IProgress<(long Scored, long Total, double Rate)>
    {
        public void Report((long Scored, long Total, double Rate) value) => report(value);
    }
}
