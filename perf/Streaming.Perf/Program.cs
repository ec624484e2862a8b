using BenchmarkDotNet.Running;
using Streaming.Perf;

// dotnet run -c Release --project perf/Streaming.Perf -- <what>
//   decode     BenchmarkDotNet: decode + resize to 224x224 of the real photos, 28x28 PNG decode
//   stages     per-image cost of each ingest step, single thread (a quick breakdown, not BDN)
//   ingest     end-to-end ingest throughput, Fashion-MNIST idx -> shards (needs dataset-fashion-mnist)
//   score      `score` against the teacher's bare inference [TEACHER DATA batch workers threads]
//   select     the selection core on synthetic score rows [rows C K P] (rows/s and RSS as rows grow)
//   select-shards  `select` over synthetic Parquet score shards [rows C K P DIR] (written once, then reused)
//   study-plot OUT.png RUN.json...  student and baseline top-1 and precision against K, mean over seeds (docs/results.md)
//   model      resnet20 training and inference images/s [threads batch seconds arch]; compare perf/python/torch_resnet20_bench.py
//   daemon-soak [minutes=30] [burst_shards=1000] [interval_s=4] [out] [teacher]  the daemon as a process: burst, then steady arrivals; RSS curve
//   daemon-soak-hostile [minutes=30] [burst_shards=300] [interval_s=6] [out]  the same with hostile drops, 2 kill -9s and a full disk; checks (root: tmpfs)
//   hot --inProcess  BenchmarkDotNet: top-P, selector offer and merge, score/image shard read and write, batch assembly
//   profile-overhead TEACHER DATA [seconds=15] [reps=3]  scoring throughput with the profiler sampling and without
//   cluster-coord CONN [workers=3] [shards=20000] [lease=4] [TLSDIR]  leases + commits a second: silo processes with a zero-cost scorer (perf/cluster.sh);
//     TLSDIR, from `streaming cluster certs --names node`, runs it all with mutual TLS (perf/cluster-tls.sh)
//   cluster-merge DIR [partials=100] [C=1000] [K=16000] [per_class=1600]  the per-class merge grains over synthetic partials: time and memory
//   dedup-truth DATA AGAINST OUT [MODEL]  dedup's precision and recall against an exact pixel search (perf/dedup-truth.sh)
//   (anything else is passed to BenchmarkDotNet's switcher)
string what = args.Length > 0 ? args[0] : "help";
switch (what)
{
    case "stages":
        StageBreakdown.Run();
        return 0;
    case "ingest":
        return await IngestThroughput.RunAsync(args.Skip(1).ToArray());
    case "score":
        return await ScoringThroughput.RunAsync(args.Skip(1).ToArray());
    case "select":
        SelectionThroughput.Run(args.Skip(1).ToArray());
        return 0;
    case "select-shards":
        return await SelectionThroughput.RunShardsAsync(args.Skip(1).ToArray());
    case "daemon-soak":
        return await DaemonSoak.RunAsync(args.Skip(1).ToArray());
    case "daemon-soak-hostile":
        return await DaemonHostileSoak.RunAsync(args.Skip(1).ToArray());
    case "study-plot":
        return StudyPlot.Run(args.Skip(1).ToArray());
    case "model":
        ModelThroughput.Run(args.Skip(1).ToArray());
        return 0;
    case "hot":
        BenchmarkRunner.Run<HotPathBenchmarks>(args: args.Skip(1).ToArray());
        return 0;
    case "profile-overhead":
        return await ProfileOverhead.RunAsync(args.Skip(1).ToArray());
    case "decode":
        BenchmarkRunner.Run<DecodeBenchmarks>(args: args.Skip(1).ToArray());
        return 0;
    case "cluster-coord":
        return await ClusterBench.CoordinationAsync(args.Skip(1).ToArray());
    case "cluster-coord-worker":
        return await ClusterBench.CoordinationWorkerAsync(args.Skip(1).ToArray());
    case "dedup-truth":
        return await DedupTruth.RunAsync(args.Skip(1).ToArray());
    case "cluster-merge":
        return await ClusterBench.MergeAsync(args.Skip(1).ToArray());
    case "help":
        Console.WriteLine("usage: Streaming.Perf decode|stages|ingest|model [options]");
        return 0;
    default:
        BenchmarkSwitcher.FromAssembly(typeof(DecodeBenchmarks).Assembly).Run(args);
        return 0;
}
