using System.Diagnostics;
using Streaming.Models;
using Streaming.Models.IO;
using Streaming.Core.Dataflow;
using Streaming.Models.Teachers;
using Streaming.Engine.Scoring;
using TorchSharp;
using static TorchSharp.torch;

namespace Streaming.Perf;

/// <summary>
/// The engine's cost: `score` over a dataset against the teacher's bare inference (random tensors of the
/// same shape and batch, no decode, no I/O) measured in the same process, right before.
/// Usage: score TEACHER DATA [batch] [decode-workers] [threads]
/// </summary>
internal static class ScoringThroughput
{
    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length < 2)
        {
            Console.Error.WriteLine("usage: Streaming.Perf score TEACHER DATA [batch] [decode-workers] [threads]");
            return 2;
        }
        string teacherPath = args[0], data = args[1];
        int batch = args.Length > 2 ? int.Parse(args[2]) : 256;
        int workers = args.Length > 3 ? int.Parse(args[3]) : 1;
        int threads = args.Length > 4 ? int.Parse(args[4]) : Environment.ProcessorCount;
        set_num_threads(threads);
        var device = TorchDevice.Resolve("cpu");

        double bare;
        using (var teacher = Teachers.Open(teacherPath, device))
        {
            var s = teacher.Spec;
            var x = new float[batch * s.InChannels * s.ImageSize * s.ImageSize];
            var rng = new Random(1);
            for (int i = 0; i < x.Length; i++) x[i] = (float)rng.NextDouble();
            var classes = new int[batch * 10];
            var probs = new float[batch * 10];
            for (int i = 0; i < 3; i++) teacher.TopK(x, batch, 10, classes, probs);
            var sw = Stopwatch.StartNew();
            long n = 0;
            while (sw.Elapsed.TotalSeconds < 20) { teacher.TopK(x, batch, 10, classes, probs); n += batch; }
            bare = n / sw.Elapsed.TotalSeconds;
        }
        Console.WriteLine($"bare inference (teacher.TopK on ready tensors, batch {batch}, {threads} threads): {bare:N0} images/s");

        string output = Path.Combine(Path.GetTempPath(), $"streaming-perf-score-{Environment.ProcessId}");
        if (Directory.Exists(output)) Directory.Delete(output, true);
        var result = await ScoreEngine.RunAsync(new ScoreOptions { Teacher = teacherPath, Data = data, Out = output, BatchSize = batch, DecodeWorkers = workers, Threads = threads });
        Console.WriteLine($"streaming score: {result.ImagesScored:N0} images in {result.Elapsed.TotalSeconds:F1} s = {result.ImagesPerSecond:N0} images/s = {100 * result.ImagesPerSecond / bare:F1}% of bare inference");
        Console.WriteLine("| stage | workers | items in | busy s | blocked s | starved s | utilization |");
        Console.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var st in result.Stages)
            Console.WriteLine($"| {st.Stage} | {st.Workers} | {st.ItemsIn:N0} | {st.BusySeconds:F1} | {st.BlockedSeconds:F1} | {st.StarvedSeconds:F1} | {st.Utilization:P0} |");
        Console.WriteLine($"bottleneck: {result.Bottleneck}");
        Directory.Delete(output, true);
        return 0;
    }
}
