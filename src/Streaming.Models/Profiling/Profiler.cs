using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Streaming.Core;
using Streaming.Core.Datasets;
using Streaming.Core.Selection;
using Streaming.Models.IO;
using Streaming.Models.Pipelines;
using Streaming.Models.Scoring;
using TorchSharp;

namespace Streaming.Models.Profiling;

/// <summary>Settings of a profile of the scoring graph.</summary>
public sealed record ProfileOptions
{
    public required string Teacher { get; init; }
    public required string Data { get; init; }
    /// <summary>How long to run; the data is read round and round until then. Null: one pass over the data.</summary>
    public TimeSpan? Duration { get; init; } = TimeSpan.FromSeconds(20);
    public int TopP { get; init; } = 10;
    public int BatchSize { get; init; } = 256;
    public int DecodeWorkers { get; init; } = 1;
    public int? Threads { get; init; }
    public string Device { get; init; } = "auto";
    public TimeSpan Interval { get; init; } = TimeSpan.FromMilliseconds(100);
    /// <summary>Sample the counters at all (off: the same run, unprofiled, to measure the profiler's own cost).</summary>
    public bool Sample { get; init; } = true;

    /// <summary>The settings as a flat map, for the report.</summary>
    public IReadOnlyDictionary<string, object?> Describe() => new SortedDictionary<string, object?>(StringComparer.Ordinal)
    {
        ["teacher"] = Teacher, ["data"] = Data, ["duration_s"] = Duration?.TotalSeconds, ["top_p"] = TopP, ["batch"] = BatchSize,
        ["decode_workers"] = DecodeWorkers, ["threads"] = Threads ?? torch.get_num_threads(), ["device"] = Device,
        ["interval_ms"] = Interval.TotalMilliseconds, ["cores"] = Environment.ProcessorCount,
    };
}

/// <summary>What one profiled run measured.</summary>
public sealed record ProfileRun(ProfileOptions Options, IReadOnlyList<ProfileSample> Samples, ProfileVerdict? Verdict, long Images, TimeSpan Elapsed)
{
    public double ImagesPerSecond => Elapsed.TotalSeconds > 0 ? Images / Elapsed.TotalSeconds : 0;
}

/// <summary>
/// Runs the scoring graph (<see cref="ScoreGraph"/>, the graph of <c>score</c> and the daemon) for a while with its
/// counters sampled, and says where the time goes. Score shards are written (to a scratch folder, deleted at the
/// end), so the write stage does its real work.
/// </summary>
public static class Profiler
{
    public static readonly string[] Knobs = ["batch", "decode-workers", "threads"];

    public static async Task<ProfileRun> RunAsync(ProfileOptions o, ITeacher? teacher = null, Action<string>? log = null, CancellationToken cancellationToken = default)
    {
        log ??= _ => { };
        var dataset = DatasetManifest.Load(o.Data);
        if (dataset.Shards.Count == 0) throw new StreamingException($"{o.Data}: the dataset has no shards");
        if (o.Threads is int t) torch.set_num_threads(t);
        ITeacher? owned = null;
        if (teacher is null)
        {
            string path = o.Teacher.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase) ? o.Teacher : ModelFile.Resolve(o.Teacher);
            teacher = owned = Teachers.Open(path, TorchDevice.Resolve(o.Device), null, o.Threads);
        }
        string scratch = Path.Combine(Path.GetTempPath(), "streaming-profile-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(scratch);
        try
        {
            int written = 0;
            var graph = new ScoreGraph(teacher, Math.Min(o.TopP, teacher.Spec.NumClasses), o.BatchSize, o.DecodeWorkers, async (shard, token) =>
            {
                if (shard.Error is not null) return; // the last shard, cut off when the time was up
                await ScoreShards.WriteAsync(Path.Combine(scratch, $"score-{written++ % 4}.parquet"), shard.Rows, cancellationToken: token).ConfigureAwait(false);
            }, cancellationToken);
            using var sampler = o.Sample ? new GraphSampler(graph.Stages, o.Interval) : null;
            var clock = Stopwatch.StartNew();
            using var timeUp = new CancellationTokenSource();
            if (o.Duration is TimeSpan d) timeUp.CancelAfter(d);
            try
            {
                bool first = true;
                while (first || (o.Duration is not null && !timeUp.IsCancellationRequested))
                {
                    first = false;
                    foreach (var shard in dataset.Shards)
                    {
                        if (timeUp.IsCancellationRequested) break;
                        await graph.SendShardAsync(Path.Combine(o.Data, shard.File), shard.File, stopReading: timeUp.Token).ConfigureAwait(false);
                    }
                }
                graph.Complete();
            }
            catch (Exception e)
            {
                graph.Fault(e);
            }
            await graph.WaitAsync().ConfigureAwait(false);
            var elapsed = clock.Elapsed;
            long images = graph.Infer.Snapshot().ItemsOut; // every image through the model, the last shard's too (cut off, it is not written)
            sampler?.Dispose();
            var samples = sampler?.Samples ?? [];
            var verdict = samples.Count >= 2 ? ProfileAnalysis.Analyse(samples) : null;
            return new ProfileRun(o, samples, verdict, images, elapsed);
        }
        finally
        {
            owned?.Dispose();
            Directory.Delete(scratch, true);
        }
    }

    /// <summary>A copy of the options with one knob set.</summary>
    public static ProfileOptions With(ProfileOptions o, string knob, int value) => knob switch
    {
        "batch" => o with { BatchSize = value },
        "decode-workers" => o with { DecodeWorkers = value },
        "threads" => o with { Threads = value },
        _ => throw new ArgumentException($"--sweep {knob}: the knobs are {string.Join(", ", Knobs)}"),
    };

    /// <summary>Parses <c>knob=v1,v2,...</c>.</summary>
    public static (string Knob, int[] Values) ParseSweep(string text)
    {
        int eq = text.IndexOf('=');
        if (eq <= 0) throw new ArgumentException($"--sweep {text}: use knob=v1,v2,..., for example batch=32,64,128");
        string knob = text[..eq];
        if (!Knobs.Contains(knob)) throw new ArgumentException($"--sweep {text}: the knobs are {string.Join(", ", Knobs)}");
        var values = text[(eq + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(v =>
            int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int x) && x >= 1 ? x : throw new ArgumentException($"--sweep {text}: '{v}' is not a whole number >= 1")).ToArray();
        if (values.Length == 0) throw new ArgumentException($"--sweep {text}: give at least one value");
        return (knob, values);
    }

    /// <summary>
    /// The teacher and the unlabeled set of a pipeline's run (its run.json, written by <c>streaming run</c>), with
    /// the scoring stage's P' and batch: profiling a pipeline profiles its scoring, where the images flow.
    /// </summary>
    public static ProfileOptions FromPipeline(string manifestPath, string? runFolder)
    {
        var manifest = PipelineManifest.Load(manifestPath);
        runFolder ??= Path.Combine("runs", manifest.Text("name"));
        string record = Path.Combine(runFolder, PipelineRunner.RunFileName);
        if (!File.Exists(record))
            throw new StreamingException($"{record} not found: run the pipeline first (streaming run {manifestPath} --out {runFolder}), or profile a stage directly (--stage score --teacher MODEL --data DIR)");
        var run = JsonNode.Parse(File.ReadAllText(record))!;
        JsonNode Stage(string name) => run["stages"]!.AsArray().FirstOrDefault(s => s!["name"]!.GetValue<string>() == name)
            ?? throw new StreamingException($"{record}: no '{name}' stage");
        string Folder(string name) => Path.Combine(runFolder, Stage(name)["folder"]!.GetValue<string>());
        string teacher = Path.Combine(Folder("teacher"), manifest.OptionalText("teacher.model") is string model ? Path.GetFileName(model) : ModelFile.DefaultName);
        if (!File.Exists(teacher)) throw new StreamingException($"{teacher}: the teacher is missing from the run's cache; run the pipeline again");
        return new ProfileOptions
        {
            Teacher = teacher,
            Data = Path.Combine(Folder("split"), "u"),
            TopP = manifest.Int("scoring.top_p"),
            BatchSize = manifest.Int("scoring.batch"),
            Threads = manifest.Int("threads"),
            Device = manifest.Text("device"),
        };
    }
}
