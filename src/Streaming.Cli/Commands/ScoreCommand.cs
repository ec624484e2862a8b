using System.CommandLine;
using System.Globalization;
using Streaming.Cli.Shared;
using Streaming.Core.Options;
using Streaming.Core.Selection;
using Streaming.Core.Dataflow;
using Streaming.Models.Teachers;
using Streaming.Engine.Scoring;

namespace Streaming.Cli.Commands;

/// <summary><c>streaming score</c>: the teacher over unlabeled shards, into score shards (and D-hat with -k).</summary>
public static class ScoreCommand
{
    public static Command Create()
    {
        var teacher = new Option<string>("--teacher", "-t") { Description = "Teacher model: model.safetensors or a run folder", Required = true };
        var data = new Option<string>("--data", "-d") { Description = "Dataset folder to score (usually U)", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Output folder: scores/, scoring.json, stages.jsonl, selection/ with -k", Required = true };
        var scoring = new ScoringFlags();
        var cluster = new ClusterFlags(required: false);
        cluster.Cluster.Description = "Score on a cluster: 'localhost' (one process, no database) or the PostgreSQL connection string of one whose 'streaming worker's do the work (or file:PATH holding it); Ctrl-C detaches, the same command attaches";
        var leaseSeconds = new Option<double>("--lease-seconds") { Description = "With --cluster: how long a worker holds a shard without a heartbeat", DefaultValueFactory = _ => 30 };
        var command = new Command("score", "Score a dataset with the teacher: top-P' classes per image into Parquet score shards; resumable per shard.")
        {
            teacher, data, output, leaseSeconds,
        };
        cluster.AddTo(command);
        scoring.AddTo(command);
        command.SetAction(async (parse, cancellationToken) =>
        {
            scoring.Compute.Apply(parse);
            var options = new ScoreOptions { Teacher = parse.GetValue(teacher)!, Data = parse.GetValue(data)!, Out = parse.GetValue(output)!, Scoring = scoring.Bind(parse) };
            if (cluster.Bind(parse, Path.Combine(options.Out, ".cluster")) is { } conn)
            {
                if (parse.GetValue(leaseSeconds) is var lease && (lease < 1 || lease > 3600)) throw new ArgumentException($"--lease-seconds {lease}: must be 1 to 3600");
                return await ClusterScore.RunAsync(options, conn, lease, Streaming.Models.Compute.Kernels.Current().Isa, cancellationToken);
            }
            var console = new ConsoleProgress();
            var inv = CultureInfo.InvariantCulture;
            var progress = new Progress<(long Scored, long Total, double Rate)>(x => console.Report(string.Create(inv,
                $"  {x.Scored:N0}/{x.Total:N0} images  {x.Rate:N0} images/s  ETA {(x.Rate > 0 ? TimeSpan.FromSeconds((x.Total - x.Scored) / x.Rate).ToString(@"mm\:ss", inv) : "?")}")));
            ScoreResult result;
            try
            {
                result = await ScoreEngine.RunAsync(options, progress, line => { console.Done(); Console.Error.WriteLine(line); }, cancellationToken);
            }
            finally
            {
                console.Done();
            }
            Console.WriteLine(string.Create(inv, $"scored {result.ImagesScored:N0} images in {result.Elapsed.TotalSeconds:N1} s ({result.ImagesPerSecond:N0} images/s); {result.ShardsDone} shards done, {result.ShardsSkipped} already done, {result.FailedShards.Count} failed; {result.Quarantined:N0} quarantined"));
            Console.WriteLine("  stage      workers    in        out       busy s   blocked s  starved s  utilization");
            foreach (var s in result.Stages)
                Console.WriteLine(string.Create(inv, $"  {s.Stage,-8} {s.Workers,7} {s.ItemsIn,9:N0} {s.ItemsOut,9:N0} {s.BusySeconds,9:F1} {s.BlockedSeconds,10:F1} {s.StarvedSeconds,10:F1} {s.Utilization,11:P0}"));
            Console.WriteLine($"  bottleneck: {result.Bottleneck}");
            if (result.Selection is { } sel) Console.WriteLine(string.Create(inv, $"D-hat: {sel.Selected:N0} rows ({sel.DistinctImages:N0} distinct images), K={sel.K}, P={sel.P}, {sel.Balance} -> {Path.Combine(options.Out, "selection")}"));
            foreach (var f in result.FailedShards) Console.Error.WriteLine($"failed shard: {f} (see scoring.json)");
            return result.FailedShards.Count > 0 ? (int)ExitCode.PartialFailure : (int)ExitCode.Ok;
        });
        return command;
    }
}
