using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Streaming.Core.Ingest;
using Streaming.Core.Plots;
using Streaming.Core.Shards;
using Streaming.Models.Training;
using Streaming.Models.Loading;

namespace Streaming.Perf;

/// <summary>
/// The daemon under load, as a real process (the `streaming` command): first a burst of many small shards
/// dropped at once (memory must stay under limits.memory_mb while they wait), then steady arrivals for a
/// number of minutes (resident memory must stay flat). Samples RSS (from /proc) and the daemon's /metrics,
/// writes a CSV and a plot, and ends with SIGTERM (exit code and time).
/// </summary>
/// <remarks>
/// daemon-soak [minutes=30] [burst_shards=1000] [steady_interval_s=4] [out=perf/results/daemon-soak] [teacher]
/// </remarks>
internal static class DaemonSoak
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static async Task<int> RunAsync(string[] args)
    {
        double minutes = args.Length > 0 ? double.Parse(args[0], Inv) : 30;
        int burst = args.Length > 1 ? int.Parse(args[1], Inv) : 1000;
        double interval = args.Length > 2 ? double.Parse(args[2], Inv) : 4;
        string output = Path.GetFullPath(args.Length > 3 ? args[3] : Path.Combine(RepoPaths.Root, "perf", "results", "daemon-soak"));
        string work = Path.Combine(Path.GetTempPath(), "streaming-daemon-soak");
        if (Directory.Exists(work)) Directory.Delete(work, true);
        Directory.CreateDirectory(work);
        Directory.CreateDirectory(output);
        const int memoryMb = 1024;

        // Images: the committed 300-image sample, reused under fresh ids in every shard (content-keyed shards must differ).
        string sample = Path.Combine(work, "sample");
        await Ingestor.RunAsync(ImageSource.Open(Path.Combine(RepoPaths.Samples, "fashion-mnist-mini.tar")), sample);
        var records = new List<ImageRecord>();
        foreach (var f in Directory.EnumerateFiles(sample, "*.parquet"))
            await foreach (var r in ImageShardReader.ReadAsync(f)) records.Add(r);
        string teacher = args.Length > 4 ? args[4] : Path.Combine(work, "teacher");
        if (args.Length <= 4)
            await Trainer.RunAsync(new TrainOptions { Data = sample, Arch = "cnn-small", Out = teacher, Images = 32 * 20, BatchSize = 32, BaseLr = 0.2, Schedule = ScheduleKind.Cosine, WeightDecay = 1e-4, Augment = true, Threads = 2 });

        int serial = 0;
        async Task<string> MakeShard(string folder, int images)
        {
            string name = $"soak-{serial:D6}.parquet";
            string path = Path.Combine(folder, name);
            await using var writer = await ImageShardWriter.CreateAsync(path);
            for (int i = 0; i < images; i++)
            {
                var r = records[i % records.Count];
                await writer.WriteAsync(r with { Id = $"s{serial}-{i}" });
            }
            await writer.CompleteAsync();
            serial++;
            return path;
        }

        string inbox = Path.Combine(work, "inbox"), state = Path.Combine(work, "state"), staging = Path.Combine(work, "staging");
        Directory.CreateDirectory(inbox);
        Directory.CreateDirectory(staging);
        Console.WriteLine($"making {burst} burst shards of 50 images ...");
        var burstShards = new List<string>();
        for (int i = 0; i < burst; i++) burstShards.Add(await MakeShard(staging, 50));

        var psi = new ProcessStartInfo(Path.Combine(RepoPaths.Root, "streaming")) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "daemon", "--teacher", teacher, "--inbox", inbox, "--state", state, "-k", "1000", "-p", "2", "--top-p", "5",
                     "--listen", "127.0.0.1:0", "--log-format", "json", "--set", "scoring.threads=1", "--set", "scoring.batch=128",
                     "--set", $"limits.memory_mb={memoryMb}", "--set", "watch.settle_seconds=0.5", "--set", "snapshot.every_shards=100" })
            psi.ArgumentList.Add(a);
        using var daemon = Process.Start(psi)!;
        await using var log = new StreamWriter(Path.Combine(output, "daemon.log.jsonl"));
        daemon.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
        daemon.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
        daemon.BeginOutputReadLine();
        daemon.BeginErrorReadLine();
        string info = Path.Combine(state, "daemon.json");
        var wait = Stopwatch.StartNew();
        int pid = -1;
        string? address = null;
        while (address is null)
        {
            if (daemon.HasExited) throw new InvalidOperationException($"the daemon exited with {daemon.ExitCode}; see {output}/daemon.log.jsonl");
            if (wait.Elapsed > TimeSpan.FromMinutes(3)) throw new TimeoutException("the daemon did not start");
            if (File.Exists(info))
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(info));
                pid = doc.RootElement.GetProperty("pid").GetInt32();
                address = doc.RootElement.GetProperty("http").GetString();
            }
            await Task.Delay(200);
        }
        using var http = new HttpClient { BaseAddress = new Uri(address!), Timeout = TimeSpan.FromSeconds(10) };
        long Rss() => DaemonProbe.Rss(pid);
        Task<Dictionary<string, double>> Metrics() => DaemonProbe.MetricsAsync(http);

        var clock = Stopwatch.StartNew();
        var csv = new StringBuilder("phase,t_s,rss_mb,images_scored,shards_done,pending,in_flight,images_per_s,gc_heap_mb,gc_committed_mb\n");
        var samples = new List<(string Phase, double T, double Rss, double Scored, double Pending)>();
        async Task Sample(string phase)
        {
            var m = await Metrics();
            double rss = Rss() / 1048576.0;
            samples.Add((phase, clock.Elapsed.TotalSeconds, rss, m["streaming_images_scored_total"], m["streaming_shards_pending"]));
            csv.Append(Inv, $"{phase},{clock.Elapsed.TotalSeconds:F1},{rss:F1},{m["streaming_images_scored_total"]},{m["streaming_shards_done_total"]},{m["streaming_shards_pending"]},{m["streaming_shards_in_flight"]},{m["streaming_images_per_second"]:F0},{m["streaming_gc_heap_bytes"] / 1048576.0:F1},{m["streaming_gc_committed_bytes"] / 1048576.0:F1}\n");
        }

        // Phase 1: the burst. Every shard lands in the inbox at once (renames).
        await Sample("start");
        double idleRss = samples[^1].Rss;
        foreach (var s in burstShards) File.Move(s, Path.Combine(inbox, Path.GetFileName(s)));
        Console.WriteLine($"burst: {burst} shards ({burst * 50:N0} images) in the inbox; daemon idle RSS {idleRss:F0} MB, bound {memoryMb} MB");
        double burstStart = clock.Elapsed.TotalSeconds, peakPending = 0;
        while (true)
        {
            await Task.Delay(1000);
            await Sample("burst");
            peakPending = Math.Max(peakPending, samples[^1].Pending);
            if (samples[^1].Scored >= burst * 50 && samples[^1].Pending == 0) break;
            if (daemon.HasExited) throw new InvalidOperationException("the daemon died during the burst");
        }
        double burstSeconds = clock.Elapsed.TotalSeconds - burstStart;
        double burstPeak = samples.Where(s => s.Phase == "burst").Max(s => s.Rss);
        Console.WriteLine(string.Create(Inv, $"burst done in {burstSeconds:F0} s ({burst * 50 / burstSeconds:F0} images/s); peak pending {peakPending}; peak RSS {burstPeak:F0} MB (bound {memoryMb} MB)"));

        // Phase 2: steady arrivals, one 1000-image shard every `interval` seconds.
        double steadyStart = clock.Elapsed.TotalSeconds;
        long steadyImages = 0;
        var nextDrop = Stopwatch.StartNew();
        var nextSample = Stopwatch.StartNew();
        while (clock.Elapsed.TotalSeconds - steadyStart < minutes * 60)
        {
            if (nextDrop.Elapsed.TotalSeconds >= interval)
            {
                nextDrop.Restart();
                string shard = await MakeShard(staging, 1000);
                File.Move(shard, Path.Combine(inbox, Path.GetFileName(shard)));
                steadyImages += 1000;
            }
            if (nextSample.Elapsed.TotalSeconds >= 5)
            {
                nextSample.Restart();
                await Sample("steady");
            }
            if (daemon.HasExited) throw new InvalidOperationException("the daemon died during the soak");
            await Task.Delay(100);
        }
        await Sample("steady");

        // SIGTERM: exit code and time.
        var term = Stopwatch.StartNew();
        using (var kill = Process.Start("kill", ["-TERM", pid.ToString(Inv)])) await kill!.WaitForExitAsync();
        await daemon.WaitForExitAsync();
        double termSeconds = term.Elapsed.TotalSeconds;

        var steady = samples.Where(s => s.Phase == "steady").ToList();
        // RSS trend over the second half of the soak (least squares), in MB per 10 minutes.
        var half = steady.Where(s => s.T - steadyStart >= minutes * 30).ToList();
        double mt = half.Average(s => s.T), mr = half.Average(s => s.Rss);
        double slope = half.Sum(s => (s.T - mt) * (s.Rss - mr)) / Math.Max(1e-9, half.Sum(s => (s.T - mt) * (s.T - mt))) * 600;
        double first = steady.Where(s => s.T - steadyStart <= 300).Average(s => s.Rss), last = steady.Where(s => s.T - steadyStart >= minutes * 60 - 300).Average(s => s.Rss);
        File.WriteAllText(Path.Combine(output, "soak.csv"), csv.ToString());
        LinePlot.Save(Path.Combine(output, "rss.png"),
        [
            new Panel("Daemon resident memory (burst, then steady arrivals)", "time (s)", "RSS (MB)",
            [
                new Series("burst", samples.Where(s => s.Phase is "start" or "burst").Select(s => (s.T, s.Rss)).ToList(), LinePlot.Palette[1]),
                new Series("steady", steady.Select(s => (s.T, s.Rss)).ToList(), LinePlot.Palette[0]),
                new Series($"bound ({memoryMb} MB)", [(0, memoryMb), (samples[^1].T, memoryMb)], LinePlot.Palette[3]),
            ]),
            new Panel("Inbox backlog", "time (s)", "drops pending", [new Series("pending", samples.Select(s => (s.T, s.Pending)).ToList(), LinePlot.Palette[2])]),
        ]);
        string summary = string.Create(Inv, $"""
            machine: {Environment.ProcessorCount} cores, {Environment.OSVersion}; date {DateTime.UtcNow:yyyy-MM-dd}
            burst: {burst} shards x 50 images dropped at once; done in {burstSeconds:F0} s ({burst * 50 / burstSeconds:F0} images/s); peak pending {peakPending}; idle RSS {idleRss:F0} MB; peak RSS {burstPeak:F0} MB; bound {memoryMb} MB
            steady: {minutes:F0} min, one 1000-image shard every {interval:F1} s ({steadyImages:N0} images); mean RSS first 5 min {first:F0} MB, last 5 min {last:F0} MB; max {steady.Max(s => s.Rss):F0} MB; trend over the second half {slope:+0.0;-0.0} MB / 10 min; max pending {steady.Max(s => s.Pending)}
            SIGTERM: exit {daemon.ExitCode} after {termSeconds:F1} s
            """);
        File.WriteAllText(Path.Combine(output, "summary.txt"), summary + "\n");
        Console.WriteLine(summary);
        return daemon.ExitCode;
    }
}
