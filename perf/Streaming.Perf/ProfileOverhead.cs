using Streaming.Core.Options;
using Streaming.Core.Scoring;
using System.Globalization;
using Streaming.Core.Dataflow;
using Streaming.Core.Profiling;
using Streaming.Engine.Profiling;

namespace Streaming.Perf;

/// <summary>
/// What profiling costs: the scoring graph run for a fixed time with the sampler on (every 100 ms) and off,
/// alternating, several times each; images/s compared. The goal is within 3%.
/// </summary>
internal static class ProfileOverhead
{
    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length < 2) { Console.Error.WriteLine("usage: profile-overhead TEACHER DATA [seconds=15] [reps=3] [threads]"); return 2; }
        var inv = CultureInfo.InvariantCulture;
        double seconds = args.Length > 2 ? double.Parse(args[2], inv) : 15;
        int reps = args.Length > 3 ? int.Parse(args[3], inv) : 3;
        int? threads = args.Length > 4 ? int.Parse(args[4], inv) : null;
        var o = new ProfileOptions { Teacher = args[0], Data = args[1], Duration = TimeSpan.FromSeconds(seconds), Scoring = new ScoringSpec { Compute = new ComputeSpec { Threads = threads ?? 0 } } };
        await Profiler.RunAsync(o with { Duration = TimeSpan.FromSeconds(3), Sample = false }); // warm-up
        var on = new List<double>();
        var off = new List<double>();
        var ratios = new List<double>();
        double samplerSeconds = 0, onSeconds = 0;
        long samples = 0;
        for (int r = 0; r < reps; r++)
        {
            double pairOn = 0, pairOff = 0;
            foreach (bool sample in r % 2 == 0 ? new[] { false, true } : [true, false])
            {
                var run = await Profiler.RunAsync(o with { Sample = sample });
                (sample ? on : off).Add(run.ImagesPerSecond);
                if (sample)
                {
                    pairOn = run.ImagesPerSecond;
                    samplerSeconds += run.SamplerTime.TotalSeconds;
                    onSeconds += run.Elapsed.TotalSeconds;
                    samples += run.Samples.Count;
                }
                else
                {
                    pairOff = run.ImagesPerSecond;
                }
                Console.WriteLine(string.Create(inv, $"rep {r + 1} profiling {(sample ? "on " : "off")}: {run.ImagesPerSecond:N0} images/s ({run.Images:N0} in {run.Elapsed.TotalSeconds:F1} s)"));
            }
            ratios.Add(pairOn / pairOff);
        }
        double meanOn = on.Average(), meanOff = off.Average();
        // Back-to-back pairs share the machine's state of the moment, so their ratio is less noisy than the two means.
        double meanRatio = ratios.Average();
        double sd = ratios.Count > 1 ? Math.Sqrt(ratios.Sum(x => (x - meanRatio) * (x - meanRatio)) / (ratios.Count - 1)) : double.NaN;
        double half = 2 * sd / Math.Sqrt(ratios.Count);
        Console.WriteLine(string.Create(inv, $"mean: off {meanOff:N0} images/s, on {meanOn:N0} images/s: profiling costs {(1 - meanOn / meanOff) * 100:F1}% (goal: within 3%); runs vary by {(off.Max() - off.Min()) / meanOff * 100:F1}% (off) and {(on.Max() - on.Min()) / meanOn * 100:F1}% (on)"));
        Console.WriteLine(string.Create(inv, $"pairs: on/off = {meanRatio:F3} +- {half:F3} (about 95%, {ratios.Count} pairs)"));
        Console.WriteLine(string.Create(inv, $"sampler's own time: {samplerSeconds * 1000:F1} ms in {onSeconds:F0} s of profiled runs ({samples:N0} samples, {samplerSeconds / samples * 1e6:F0} us each) = {samplerSeconds / (onSeconds * Environment.ProcessorCount) * 100:F3}% of the machine's {Environment.ProcessorCount} cores"));
        return 0;
    }
}
