using Streaming.Core.Options;
using Streaming.Core.Scoring;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Streaming.Cluster;
using Streaming.Cluster.Client;
using Streaming.Core.Selection;

namespace Streaming.Perf;

/// <summary>
/// The cluster's own costs (issue 19), apart from scoring: how many shards a second the job grain leases and commits
/// with a zero-cost scorer, and how long the per-class merge of many partial selectors takes.
/// </summary>
internal static class ClusterBench
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>
    /// The coordination ceiling: one silo process hosting the job grain and N worker processes (Orleans clients; PostgreSQL
    /// membership and grain state), each leasing
    /// shards of one job in batches and committing them at once, as a worker with an infinitely fast teacher would.
    /// </summary>
    public static async Task<int> CoordinationAsync(string[] args)
    {
        string conn = args[0];
        int workers = args.Length > 1 ? int.Parse(args[1], Inv) : 3;
        int shards = args.Length > 2 ? int.Parse(args[2], Inv) : 20000;
        int lease = args.Length > 3 ? int.Parse(args[3], Inv) : 4;
        string tlsDir = args.Length > 4 ? args[4] : "";
        var connection = WithTls(ClusterConnection.Parse(conn, "."), tlsDir);
        await ClusterSchema.EnsureAsync(connection);
        var children = new List<Process>();
        // One silo hosts the grains (the job grain lives there); the workers are separate processes that reach it over
        // the network, as every worker but one does in a real cluster (the one on the job grain's silo calls it locally).
        int hostGateway = ClusterHosting.FreePort();
        var gateways = new List<int> { hostGateway };
        children.Add(StartSelf("cluster-coord-worker", conn, ClusterHosting.FreePort().ToString(Inv), hostGateway.ToString(Inv), "grains", "0", tlsDir));
        await Task.Delay(TimeSpan.FromSeconds(6));
        for (int i = 0; i < workers; i++)
            children.Add(StartSelf("cluster-coord-worker", conn, "0", hostGateway.ToString(Inv), $"coord-{i}", lease.ToString(Inv), tlsDir));
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(8)); // the silos start and join
            using var host = ClusterClient.Build(connection, gateways[0]);
            await host.StartAsync();
            var grains = host.Services.GetRequiredService<IClusterClient>();
            var spec = JobSpec.For(new ScoringSpec { TopP = 5, Compute = new ComputeSpec { Threads = 1 } }, "native", "/nonexistent/teacher", "t", "/nonexistent/data", "d",
                "/nonexistent/out", 30, Enumerable.Range(0, shards).Select(i => new ShardInput($"shard-{i:D7}.parquet", 10_000)).ToList());
            spec = spec with { Key = "coord-" + Guid.NewGuid().ToString("N")[..12] };
            var job = grains.GetGrain<IJobGrain>(spec.Key);
            var clock = Stopwatch.StartNew();
            await job.SubmitAsync(spec);
            JobStatus status;
            var samples = new List<(double T, int Done)>();
            do
            {
                await Task.Delay(200);
                status = (await job.StatusAsync())!;
                samples.Add((clock.Elapsed.TotalSeconds, status.Done));
            }
            while (!status.Complete && clock.Elapsed < TimeSpan.FromMinutes(10));
            double wall = clock.Elapsed.TotalSeconds;
            // Steady state: from 10% to 90% of the shards done.
            var a = samples.First(s => s.Done >= shards / 10);
            var b = samples.First(s => s.Done >= shards * 9 / 10);
            Console.WriteLine($"workers {workers} (client processes) against one silo process hosting the job grain, shards {shards:N0}, lease batch {lease}, PostgreSQL membership and grain storage, {(connection.Tls is null ? "no TLS" : "mutual TLS")}");
            Console.WriteLine(string.Create(Inv, $"done {status.Done:N0} in {wall:F1} s from submit: {status.Done / wall:N0} shards/s overall"));
            Console.WriteLine(string.Create(Inv, $"steady state (10% -> 90% done): {(b.Done - a.Done) / Math.Max(1e-9, b.T - a.T):N0} shards/s (leases + commits; each shard one commit call and 1/{lease} of a lease call)"));
            foreach (var w in status.Workers) Console.WriteLine(string.Create(Inv, $"  {w.Worker}: {w.Shards:N0} shards"));
            await host.StopAsync();
            return status.Complete ? 0 : 1;
        }
        finally
        {
            foreach (var c in children)
            {
                if (!c.HasExited) c.Kill();
                c.WaitForExit();
            }
        }
    }

    /// <summary>One coordination worker: a silo of the cluster whose "scorer" costs nothing (it commits what it leases at once).</summary>
    public static async Task<int> CoordinationWorkerAsync(string[] args)
    {
        var connection = WithTls(ClusterConnection.Parse(args[0], "."), args.Length > 5 ? args[5] : "");
        int silo = int.Parse(args[1], Inv), gateway = int.Parse(args[2], Inv);
        string id = args[3];
        int lease = int.Parse(args[4], Inv);
        // The grains' silo only hosts; the others are clients of it (silo port 0) that lease and commit.
        using var host = silo == 0
            ? ClusterClient.Build(connection, gateway, l => l.SetMinimumLevel(LogLevel.Warning))
            : ClusterNode.BuildSilo(connection, new SiloEndpoints(silo, gateway), worker: null, logging: l => l.SetMinimumLevel(LogLevel.Warning));
        await host.StartAsync();
        if (lease == 0)
        {
            await host.WaitForShutdownAsync();
            return 0;
        }
        var grains = host.Services.GetRequiredService<IClusterClient>();
        var me = new WorkerInfo(id, Environment.MachineName, Environment.ProcessId, "native", "zero-cost", "{}");
        var registry = grains.GetGrain<IJobRegistryGrain>(IJobRegistryGrain.Key);
        while (true)
        {
            foreach (var key in await registry.ActiveAsync())
            {
                var job = grains.GetGrain<IJobGrain>(key);
                while (true)
                {
                    var answer = await job.LeaseAsync(me, lease);
                    if (answer.Leases.Count == 0) break;
                    foreach (var l in answer.Leases)
                        await job.CommitAsync(id, new ShardDone(l.Shard, l.Epoch, $"scores/score-{l.Shard}.parquet", "0", 10_000, 0, null));
                }
            }
            await Task.Delay(100);
        }
    }

    /// <summary>
    /// The connection with mutual TLS when <paramref name="dir"/> names a folder from <c>streaming cluster certs --names node</c>
    /// (every process presents node.pem; the CA is what admits it), as is.
    /// </summary>
    private static ClusterConnection WithTls(ClusterConnection connection, string dir) => dir.Length == 0
        ? connection
        : connection with { Tls = ClusterTls.From(Path.Combine(dir, "node.pem"), Path.Combine(dir, "node.key"), Path.Combine(dir, "ca.pem")) };

    private static Process StartSelf(params string[] args)
    {
        string self = Environment.ProcessPath!;
        var info = Path.GetFileNameWithoutExtension(self) == "dotnet"
            ? new ProcessStartInfo(self, [typeof(ClusterBench).Assembly.Location, .. args])
            : new ProcessStartInfo(self, args);
        info.RedirectStandardOutput = false;
        return Process.Start(info)!;
    }

    /// <summary>
    /// The merge: <c>partials</c> synthetic partial selectors at C classes and K, each holding <c>per_class</c> candidates
    /// a class (written once into DIR and reused), merged by the per-class merge grains of an in-process silo exactly as a
    /// job's submitter does. Prints the time, the merge grains' number and the process's peak memory.
    /// </summary>
    public static async Task<int> MergeAsync(string[] args)
    {
        string dir = Path.GetFullPath(args[0]);
        int partials = args.Length > 1 ? int.Parse(args[1], Inv) : 100;
        int classes = args.Length > 2 ? int.Parse(args[2], Inv) : 1000;
        int k = args.Length > 3 ? int.Parse(args[3], Inv) : 16000;
        int perClass = args.Length > 4 ? int.Parse(args[4], Inv) : 1600;
        Directory.CreateDirectory(Path.Combine(dir, "partials"));
        var clock = Stopwatch.StartNew();
        var infos = new List<PartialInfo>();
        for (int p = 0; p < partials; p++)
        {
            string name = Path.Combine("partials", $"p{p:D4}");
            infos.Add(new PartialInfo($"w{p}", name, [new ShardEpoch(p, 1)]));
            if (Directory.Exists(Path.Combine(dir, name))) continue;
            var random = new Random(p);
            var kept = new List<(int, Candidate)>(classes * perClass);
            for (int c = 0; c < classes; c++)
                for (int i = 0; i < perClass; i++)
                {
                    float score = (float)random.NextDouble();
                    kept.Add((c, new Candidate(score, $"img-{p:D4}-{c:D4}-{i:D6}", score)));
                }
            var selector = Selector.Restore(classes, k, 10, BalanceMode.Ranked, 0, (long)classes * perClass, new long[classes], kept);
            await PartialFiles.WriteAsync(dir, name, selector);
        }
        Console.WriteLine(string.Create(Inv, $"{partials} partials of C={classes}, K={k}, {perClass:N0} candidates a class ({(long)partials * classes * perClass:N0} in all) ready in {clock.Elapsed.TotalSeconds:F0} s; {DirSize(Path.Combine(dir, "partials")) / 1e9:F2} GB on disk"));

        var connection = ClusterConnection.Parse("localhost", Path.Combine(dir, ".cluster"));
        using var host = ClusterNode.BuildSilo(connection, new SiloEndpoints(ClusterHosting.FreePort(), ClusterHosting.FreePort()), worker: null,
            logging: l => l.SetMinimumLevel(Microsoft.Extensions.Logging.LogLevel.Warning));
        await host.StartAsync();
        var grains = host.Services.GetRequiredService<IGrainFactory>();
        var spec = JobSpec.For(new ScoringSpec { K = k, Compute = new ComputeSpec { Threads = 1 } }, "native", "t", "t", dir, "d", dir, 30,
            Enumerable.Range(0, partials).Select(i => new ShardInput($"s{i}", 1)).ToList()) with { Key = "merge-bench" };
        var records = Enumerable.Range(0, partials).Select(_ => new ShardRecord { Status = ShardStatus.Done, Epoch = 1, ScoreFile = "unused", Sha256 = "unused", Rows = 1 }).ToList();
        GC.Collect();
        long before = Environment.WorkingSet;
        clock.Restart();
        var merged = await ClusterJobs.MergeAsync(grains, new JobRecord(spec, records, infos, null), classes, Console.WriteLine, CancellationToken.None);
        double seconds = clock.Elapsed.TotalSeconds;
        long kept0 = Enumerable.Range(0, classes).Sum(c => (long)merged.Count(c));
        int buckets = (classes + PartialFiles.ClassesPerBucket - 1) / PartialFiles.ClassesPerBucket;
        var peak = File.ReadAllLines("/proc/self/status").First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        Console.WriteLine(string.Create(Inv, $"merged in {seconds:F1} s over {buckets} merge grains ({PartialFiles.ClassesPerBucket} classes each): {kept0:N0} kept (K x C = {(long)k * classes:N0})"));
        Console.WriteLine(string.Create(Inv, $"memory: working set {before / 1e6:F0} MB before, {Environment.WorkingSet / 1e6:F0} MB after; peak {peak.Split(':')[1].Trim()}; per grain about {(Environment.WorkingSet - before) / 1e6 / buckets:F0} MB"));
        Console.WriteLine(seconds <= 60 ? "goal (whole merge under 60 s): met" : "goal (whole merge under 60 s): NOT met");
        await host.StopAsync();
        return 0;
    }

    private static long DirSize(string dir) => Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
}
