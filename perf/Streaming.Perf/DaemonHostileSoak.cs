using System.Diagnostics;
using System.Formats.Tar;
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
/// The daemon as a failing machine and a hostile user would run it (issue 18), as real processes: a burst, then for a
/// number of minutes good shards and hostile drops (corrupt and truncated tars, a label of 2,000,000,000, a tar member
/// over the limit, links out of the inbox, named pipes, cut shards, files of no known kind), two kill -9s (each
/// followed by a restart) and one episode of a full disk (the state's file system filled to the last byte for a
/// minute). It checks, and writes down: resident memory flat (the mean of the last 5 minutes within 10% of the first 5);
/// every good shard scored exactly once (done.jsonl against the drops, rows against images); every hostile drop in
/// quarantine with its reason; /healthz through the episode.
/// </summary>
/// <remarks>daemon-soak-hostile [minutes=30] [burst_shards=300] [interval_s=6] [out=perf/results/daemon-soak-hostile]. Needs root for its tmpfs.</remarks>
internal static class DaemonHostileSoak
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    private static void Run(string file, params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardError = true })!;
        string error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)}: {error}");
    }

    private static void WriteTar(string path, params (string Name, byte[] Data)[] members)
    {
        using var file = File.Create(path);
        using var writer = new TarWriter(file, TarEntryFormat.Pax);
        foreach (var (name, data) in members) writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(data) });
    }

    /// <summary>
    /// Draws rss.png from a run's soak.csv and events.txt: RSS by process (each kill -9 starts a new one) with the
    /// kills and the full disk marked, and the inbox backlog.
    /// </summary>
    private static void Plot(string output)
    {
        var rows = File.ReadAllLines(Path.Combine(output, "soak.csv")).Skip(1).Select(l => l.Split(','))
            .Where(c => c.Length > 3 && c[3].Length > 0)
            .Select(c => (Phase: c[0], T: double.Parse(c[1], Inv), Pid: c[2], Rss: double.Parse(c[3], Inv), Pending: double.Parse(c[7], Inv))).ToList();
        var events = File.ReadAllLines(Path.Combine(output, "events.txt"))
            .Select(l => (T: double.Parse(l.Trim().Split(' ')[0], Inv), What: l[(l.IndexOf(" s  ", StringComparison.Ordinal) + 4)..])).ToList();
        double top = rows.Max(r => r.Rss) * 1.05;
        var series = new List<Series>
        {
            new("burst", rows.Where(r => r.Phase is "start" or "burst").Select(r => (r.T, r.Rss)).ToList(), LinePlot.Palette[1]),
        };
        int process = 0;
        int[] processColors = [0, 5, 2];
        foreach (var group in rows.Where(r => r.Phase is not ("start" or "burst")).GroupBy(r => r.Pid))
        {
            series.Add(new($"daemon process {process + 1}", group.Select(r => (r.T, r.Rss)).ToList(), LinePlot.Palette[processColors[process % processColors.Length] % LinePlot.Palette.Length]));
            process++;
        }
        // Each event a vertical line of its own.
        foreach (var (t, what) in events)
        {
            string? name = what.StartsWith("kill -9", StringComparison.Ordinal) ? what.Split(' ')[0] + " " + what.Split(' ')[1] + " " + what.Split(' ')[2]
                : what.StartsWith("disk full:", StringComparison.Ordinal) ? "disk full" : what == "disk freed" ? "disk freed" : null;
            if (name is not null) series.Add(new(name, [(t, 0), (t, top)], LinePlot.Palette[name.StartsWith("kill", StringComparison.Ordinal) ? 3 : 4]));
        }
        LinePlot.Save(Path.Combine(output, "rss.png"),
        [
            new Panel("Daemon RSS: burst, then good and hostile drops", "time (s)", "RSS (MB)", series),
            new Panel("Inbox backlog", "time (s)", "drops pending", [new Series("pending", rows.Select(r => (r.T, r.Pending)).ToList(), LinePlot.Palette[2])]),
        ]);
    }

    public static async Task<int> RunAsync(string[] args)
    {
        if (args is ["--replot", var folder])
        {
            Plot(Path.GetFullPath(folder));
            return 0;
        }
        double minutes = args.Length > 0 ? double.Parse(args[0], Inv) : 30;
        int burst = args.Length > 1 ? int.Parse(args[1], Inv) : 300;
        double interval = args.Length > 2 ? double.Parse(args[2], Inv) : 6;
        string output = Path.GetFullPath(args.Length > 3 ? args[3] : Path.Combine(RepoPaths.Root, "perf", "results", "daemon-soak-hostile"));
        string work = Path.Combine(Path.GetTempPath(), "streaming-hostile-soak");
        string disk = Path.Combine(work, "disk"); // a tmpfs of its own: the inbox and the state, which the episode fills
        if (Directory.Exists(disk)) try { Run("umount", "-l", disk); } catch (InvalidOperationException) { }
        if (Directory.Exists(work)) Directory.Delete(work, true);
        Directory.CreateDirectory(disk);
        Directory.CreateDirectory(output);
        Run("mount", "-t", "tmpfs", "-o", "size=2g", "tmpfs", disk);
        const int memoryMb = 1024;
        try
        {
            return await SoakAsync(minutes, burst, interval, output, work, disk, memoryMb);
        }
        finally
        {
            Run("umount", "-l", disk);
        }
    }

    private static async Task<int> SoakAsync(double minutes, int burst, double interval, string output, string work, string disk, int memoryMb)
    {
        string sample = Path.Combine(work, "sample");
        await Ingestor.RunAsync(ImageSource.Open(Path.Combine(RepoPaths.Samples, "fashion-mnist-mini.tar")), sample);
        var records = new List<ImageRecord>();
        foreach (var f in Directory.EnumerateFiles(sample, "*.parquet").Order(StringComparer.Ordinal))
            await foreach (var r in ImageShardReader.ReadAsync(f)) records.Add(r);
        string teacher = Path.Combine(work, "teacher");
        await Trainer.RunAsync(new TrainOptions { Data = sample, Arch = "cnn-small", Out = teacher, Images = 32 * 20, BatchSize = 32, BaseLr = 0.2, Schedule = ScheduleKind.Cosine, WeightDecay = 1e-4, Augment = true, Threads = 2 });

        string inbox = Path.Combine(disk, "inbox"), state = Path.Combine(disk, "state"), staging = Path.Combine(work, "staging");
        Directory.CreateDirectory(inbox);
        Directory.CreateDirectory(staging);
        int serial = 0;
        var good = new Dictionary<string, long>(StringComparer.Ordinal); // drop name -> images
        async Task<string> MakeShard(int images)
        {
            string name = $"good-{serial:D6}.parquet";
            string path = Path.Combine(staging, name);
            await using (var writer = await ImageShardWriter.CreateAsync(path))
            {
                for (int i = 0; i < images; i++) await writer.WriteAsync(records[i % records.Count] with { Id = $"g{serial}-{i}" });
                await writer.CompleteAsync();
            }
            serial++;
            good[name] = images;
            return path;
        }

        // The hostile drops, in rotation; each gets a fresh name. All of them must end in quarantine with a reason.
        var png = records[0].Image;
        var smallTar = Path.Combine(work, "small.tar");
        WriteTar(smallTar, ("a.png", png), ("a.cls", "1"u8.ToArray()), ("b.png", records[1].Image));
        var tarBytes = File.ReadAllBytes(smallTar);
        string outside = Path.Combine(work, "outside.parquet");
        File.Copy(Directory.EnumerateFiles(sample, "*.parquet").Order(StringComparer.Ordinal).First(), outside);
        var shardBytes = File.ReadAllBytes(outside);
        var hostile = new List<string>();
        int hostileSerial = 0;
        string? MakeHostile()
        {
            int kind = hostileSerial % 7;
            string stem = $"bad-{hostileSerial++:D5}";
            string name, path;
            switch (kind)
            {
                case 0: // a tar cut short
                    name = stem + ".tar"; path = Path.Combine(staging, name);
                    File.WriteAllBytes(path, tarBytes[..(tarBytes.Length / 3)]);
                    break;
                case 1: // its only image claims label 2,000,000,000
                    name = stem + ".tar"; path = Path.Combine(staging, name);
                    WriteTar(path, ("x.png", png), ("x.cls", "2000000000"u8.ToArray()));
                    break;
                case 2: // a member over limits.max_member_mb
                    name = stem + ".tar"; path = Path.Combine(staging, name);
                    WriteTar(path, ("x.png", png), ("y.png", new byte[2 << 20]));
                    break;
                case 3: // a link to a shard outside the inbox, made in the inbox (a move across file systems would copy its target)
                    name = stem + ".parquet";
                    try
                    {
                        File.CreateSymbolicLink(Path.Combine(inbox, name), outside);
                    }
                    catch (IOException)
                    {
                        return null; // the disk is full: no link this time
                    }
                    hostile.Add(name);
                    return null;
                case 4: // a named pipe, made in the inbox (a move across file systems would block on opening it)
                    name = stem + ".parquet";
                    try
                    {
                        Run("mkfifo", Path.Combine(inbox, name));
                    }
                    catch (InvalidOperationException)
                    {
                        return null;
                    }
                    hostile.Add(name);
                    return null;
                case 5: // a shard cut short
                    name = stem + ".parquet"; path = Path.Combine(staging, name);
                    File.WriteAllBytes(path, shardBytes[..(shardBytes.Length / 2)]);
                    break;
                default: // no kind of drop
                    name = stem + ".pdf"; path = Path.Combine(staging, name);
                    File.WriteAllText(path, "%PDF-1.4 not an image");
                    break;
            }
            hostile.Add(name);
            return path;
        }

        // Drops go in by rename; while the disk is full a rename into it fails, and the producer tries again later.
        var waiting = new Queue<string>();
        int Deliver()
        {
            int moved = 0;
            while (waiting.Count > 0)
            {
                string from = waiting.Peek();
                try
                {
                    File.Move(from, Path.Combine(inbox, Path.GetFileName(from)));
                }
                catch (IOException)
                {
                    break;
                }
                waiting.Dequeue();
                moved++;
            }
            return moved;
        }

        Console.WriteLine($"making {burst} burst shards of 50 images ...");
        for (int i = 0; i < burst; i++) waiting.Enqueue(await MakeShard(50));

        await using var log = new StreamWriter(Path.Combine(output, "daemon.log.jsonl"));
        Process? daemon = null;
        int pid = -1;
        HttpClient? http = null;
        async Task StartAsync()
        {
            var psi = new ProcessStartInfo(Path.Combine(RepoPaths.Root, "streaming")) { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { "daemon", "--teacher", teacher, "--inbox", inbox, "--state", state, "-k", "1000", "-p", "2", "--top-p", "5",
                         "--listen", "127.0.0.1:0", "--log-format", "json", "--set", "scoring.threads=1", "--set", "scoring.batch=128",
                         "--set", $"limits.memory_mb={memoryMb}", "--set", "limits.max_member_mb=1", "--set", "watch.settle_seconds=0.5",
                         "--set", "snapshot.every_shards=100" })
                psi.ArgumentList.Add(a);
            string info = Path.Combine(state, "daemon.json");
            var started = DateTime.UtcNow;
            daemon = Process.Start(psi)!;
            daemon.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
            daemon.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
            daemon.BeginOutputReadLine();
            daemon.BeginErrorReadLine();
            var wait = Stopwatch.StartNew();
            while (true)
            {
                if (daemon.HasExited) throw new InvalidOperationException($"the daemon exited with {daemon.ExitCode}; see {output}/daemon.log.jsonl");
                if (wait.Elapsed > TimeSpan.FromMinutes(3)) throw new TimeoutException("the daemon did not start");
                if (File.Exists(info) && File.GetLastWriteTimeUtc(info) >= started.AddSeconds(-1))
                {
                    using var doc = JsonDocument.Parse(File.ReadAllText(info));
                    if (doc.RootElement.GetProperty("pid").GetInt32() == daemon.Id)
                    {
                        pid = daemon.Id;
                        http?.Dispose();
                        http = new HttpClient { BaseAddress = new Uri(doc.RootElement.GetProperty("http").GetString()!), Timeout = TimeSpan.FromSeconds(10) };
                        return;
                    }
                }
                await Task.Delay(200);
            }
        }
        await StartAsync();

        long Rss() => DaemonProbe.Rss(pid);
        async Task<(Dictionary<string, double> Metrics, string Health)> Probe()
        {
            var result = await DaemonProbe.MetricsAsync(http!);
            using var health = await http!.GetAsync("/healthz");
            return (result, $"{(int)health.StatusCode} {(await health.Content.ReadAsStringAsync()).Trim()}");
        }

        var clock = Stopwatch.StartNew();
        var csv = new StringBuilder("phase,t_s,pid,rss_mb,images_scored,shards_done,drops_quarantined,pending,healthz\n");
        var samples = new List<(string Phase, double T, double Rss, double Scored, double Pending, string Health)>();
        var events = new List<string>();
        void Event(string what)
        {
            string line = string.Create(Inv, $"{clock.Elapsed.TotalSeconds,7:F1} s  {what}");
            events.Add(line);
            Console.WriteLine(line);
        }
        async Task Sample(string phase)
        {
            try
            {
                var (m, health) = await Probe();
                double rss = Rss() / 1048576.0;
                samples.Add((phase, clock.Elapsed.TotalSeconds, rss, m["streaming_images_scored_total"], m["streaming_shards_pending"], health));
                csv.Append(Inv, $"{phase},{clock.Elapsed.TotalSeconds:F1},{pid},{rss:F1},{m["streaming_images_scored_total"]},{m["streaming_shards_done_total"]},{m["streaming_drops_quarantined_total"]},{m["streaming_shards_pending"]},\"{health.Replace("\"", "'")}\"\n");
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                csv.Append(Inv, $"{phase},{clock.Elapsed.TotalSeconds:F1},{pid},,,,,,\"no answer: {e.Message}\"\n");
            }
        }

        // Phase 1: the burst.
        await Sample("start");
        Deliver();
        Event($"burst: {burst} shards of 50 images in the inbox");
        while (true)
        {
            await Task.Delay(1000);
            await Sample("burst");
            if (samples[^1].Scored >= burst * 50 && samples[^1].Pending == 0) break;
            if (daemon!.HasExited) throw new InvalidOperationException("the daemon died during the burst");
        }
        Event("burst scored");

        // Phase 2: good shards every `interval` s, a hostile drop every other interval; kill -9 at 1/3 and 2/3, a full disk at 1/2.
        double steadyStart = clock.Elapsed.TotalSeconds, length = minutes * 60;
        var nextDrop = Stopwatch.StartNew();
        var nextSample = Stopwatch.StartNew();
        int kills = 0, drops = 0;
        bool diskFilled = false, diskFreed = false;
        string filler = Path.Combine(disk, "filler");
        double fullAt = 0;
        while (clock.Elapsed.TotalSeconds - steadyStart < length)
        {
            double t = clock.Elapsed.TotalSeconds - steadyStart;
            if (nextDrop.Elapsed.TotalSeconds >= interval)
            {
                nextDrop.Restart();
                waiting.Enqueue(await MakeShard(1000));
                if (drops++ % 2 == 0 && MakeHostile() is string bad) waiting.Enqueue(bad);
            }
            Deliver();
            if (kills < 2 && t >= length * (kills + 1) / 3)
            {
                daemon!.Kill(); // SIGKILL
                await daemon.WaitForExitAsync();
                kills++;
                Event($"kill -9 #{kills} (pid {pid})");
                await Task.Delay(2000);
                await StartAsync();
                Event($"restarted (pid {pid})");
            }
            if (!diskFilled && t >= length / 2)
            {
                diskFilled = true;
                fullAt = clock.Elapsed.TotalSeconds;
                using (var f = new FileStream(filler, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0)) // unbuffered: nothing left to flush
                {
                    var block = new byte[1 << 20];
                    try { while (true) f.Write(block); } catch (IOException) { }
                    for (int n = 1 << 19; n >= 1; n /= 2) try { f.Write(block, 0, n); } catch (IOException) { }
                }
                Event("disk full: the state's file system filled to the last byte");
            }
            if (diskFilled && !diskFreed && clock.Elapsed.TotalSeconds - fullAt >= 60)
            {
                diskFreed = true;
                File.Delete(filler);
                Event("disk freed");
            }
            if (nextSample.Elapsed.TotalSeconds >= 5)
            {
                nextSample.Restart();
                await Sample(diskFilled && !diskFreed ? "full" : "steady");
                if (diskFilled && !diskFreed) Event($"during the full disk: /healthz {samples[^1].Health}");
            }
            if (daemon!.HasExited) throw new InvalidOperationException($"the daemon died during the soak (exit {daemon.ExitCode})");
            await Task.Delay(100);
        }
        // Drain: everything delivered and handled.
        var drain = Stopwatch.StartNew();
        while (drain.Elapsed < TimeSpan.FromMinutes(5))
        {
            Deliver();
            await Sample("drain");
            bool allGood = good.Keys.All(n => File.Exists(Path.Combine(state, "processed", n)));
            bool allBad = hostile.All(n => File.Exists(Path.Combine(state, "quarantine", n + ".reason.txt")));
            if (waiting.Count == 0 && allGood && allBad && samples[^1].Pending == 0) break;
            await Task.Delay(2000);
        }
        Event("drained");

        var term = Stopwatch.StartNew();
        using (var kill = Process.Start("kill", ["-TERM", pid.ToString(Inv)])) await kill!.WaitForExitAsync();
        await daemon!.WaitForExitAsync();
        double termSeconds = term.Elapsed.TotalSeconds;
        Event($"SIGTERM: exit {daemon.ExitCode} after {termSeconds:F1} s");

        // The checks.
        var done = File.ReadAllLines(Path.Combine(state, "done.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var doneByDrop = done.GroupBy(d => d.GetProperty("drop").GetString()!).ToDictionary(g => g.Key, g => g.ToList());
        var missing = good.Keys.Where(n => !doneByDrop.ContainsKey(n)).ToList();
        var twice = doneByDrop.Where(kv => kv.Value.Count > 1).Select(kv => kv.Key).ToList();
        var keysTwice = done.GroupBy(d => d.GetProperty("key").GetString()).Count(g => g.Count() > 1);
        var wrongRows = good.Where(kv => doneByDrop.TryGetValue(kv.Key, out var d) && d.Sum(x => x.GetProperty("rows").GetInt64()) != kv.Value).Select(kv => kv.Key).ToList();
        var notQuarantined = hostile.Where(n => !File.Exists(Path.Combine(state, "quarantine", n + ".reason.txt"))).ToList();
        var hostileScored = hostile.Where(doneByDrop.ContainsKey).ToList();
        var reasons = hostile.Where(n => File.Exists(Path.Combine(state, "quarantine", n + ".reason.txt")))
            .GroupBy(n => (int.Parse(n.Split('-')[1].Split('.')[0], Inv) % 7)).Select(g => $"{g.Key}: {File.ReadAllText(Path.Combine(state, "quarantine", g.First() + ".reason.txt")).Split('\n')[0]}").ToList();
        var steady = samples.Where(s => s.Phase is "steady" or "full" && s.Rss > 0).ToList();
        double first = steady.Where(s => s.T - steadyStart <= 300).Average(s => s.Rss), last = steady.Where(s => s.T - steadyStart >= length - 300).Average(s => s.Rss);
        double change = (last - first) / first;
        var fullHealth = samples.Where(s => s.Phase == "full").Select(s => s.Health).Distinct().ToList();
        bool ok = missing.Count == 0 && twice.Count == 0 && keysTwice == 0 && wrongRows.Count == 0 && notQuarantined.Count == 0 && hostileScored.Count == 0
            && Math.Abs(change) <= 0.10 && daemon.ExitCode == 0;

        File.WriteAllText(Path.Combine(output, "soak.csv"), csv.ToString());
        File.WriteAllLines(Path.Combine(output, "events.txt"), events);
        Plot(output);
        string summary = string.Create(Inv, $"""
            machine: {Environment.ProcessorCount} cores, {Environment.OSVersion}; date {DateTime.UtcNow:yyyy-MM-dd}
            burst: {burst} shards x 50 images; then {minutes:F0} min of a 1,000-image shard every {interval:F1} s and a hostile drop every {2 * interval:F1} s
            good drops: {good.Count} ({good.Values.Sum():N0} images); done.jsonl: {done.Count} entries; missing {missing.Count}, scored twice {twice.Count}, keys twice {keysTwice}, wrong rows {wrongRows.Count}
            hostile drops: {hostile.Count}; quarantined with a reason {hostile.Count - notQuarantined.Count}; scored {hostileScored.Count}
            reasons (first of each kind): {string.Join(" | ", reasons)}
            kill -9: {kills}; full disk: 60 s; /healthz while full: {string.Join(" ; ", fullHealth)}
            RSS: mean first 5 min {first:F0} MB, last 5 min {last:F0} MB ({change:+0.0%;-0.0%}; goal within 10%); max {steady.Max(s => s.Rss):F0} MB
            SIGTERM: exit {daemon.ExitCode} after {termSeconds:F1} s
            verdict: {(ok ? "PASS" : "FAIL")}
            """);
        File.WriteAllText(Path.Combine(output, "summary.txt"), summary + "\n");
        Console.WriteLine(summary);
        http?.Dispose();
        return ok ? 0 : 1;
    }
}
