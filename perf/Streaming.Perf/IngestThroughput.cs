using System.Diagnostics;
using Streaming.Core.Datasets;
using Streaming.Core.Ingest;

namespace Streaming.Perf;

/// <summary>End-to-end ingest of Fashion-MNIST train (60,000 idx images) into shards; best of N runs.</summary>
internal static class IngestThroughput
{
    public static async Task<int> RunAsync(string[] args)
    {
        string source = args.Length > 0 ? args[0] : Path.Combine(RepoPaths.FashionMnist, "train-images-idx3-ubyte.gz");
        int runs = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 3;
        if (!File.Exists(source))
        {
            Console.Error.WriteLine($"{source} not found: apt-get install dataset-fashion-mnist");
            return 2;
        }
        foreach (bool verify in new[] { true, false })
        {
            double best = 0;
            for (int r = 0; r < runs; r++)
            {
                string output = Path.Combine(Path.GetTempPath(), $"streaming-perf-ingest-{Environment.ProcessId}");
                if (Directory.Exists(output)) Directory.Delete(output, true);
                var sw = Stopwatch.StartNew();
                var result = await Ingestor.RunAsync(ImageSource.Open(source), output,
                    new IngestOptions { Verify = verify, Writer = new DatasetWriterOptions() });
                double rate = result.Manifest.Rows / sw.Elapsed.TotalSeconds;
                best = Math.Max(best, rate);
                Console.WriteLine($"run {r + 1}: verify={verify} {result.Manifest.Rows:N0} images in {sw.Elapsed.TotalSeconds:F2} s = {rate:N0} images/s");
                Directory.Delete(output, true);
            }
            Console.WriteLine($"best: verify={verify} {best:N0} images/s on {Environment.ProcessorCount} cores");
        }
        return 0;
    }
}
