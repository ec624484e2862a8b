using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Streaming.Core;
using Streaming.Core.Datasets;
using Streaming.Core.Selection;
using Streaming.Models.IO;
using Streaming.Engine.Pipelines;
using Streaming.Core.Loading;
using Streaming.Models.Evaluation;
using Streaming.Core.Dataflow;
using Streaming.Models.Teachers;
using Streaming.Engine.Scoring;
using Streaming.Engine.Scoring.Stages;
using Streaming.Models.Training;
using Streaming.Models.Loading;
using Streaming.Models.Zoo;
using TorchSharp;
using Streaming.Core.Profiling;
using Streaming.Core.Options;
using Streaming.Core.Scoring;

using Streaming.Models;

namespace Streaming.Engine.Profiling;

/// <summary>Settings of a profile of the scoring graph (<c>score</c>) or of the training graph (<c>train</c>).</summary>
public sealed record ProfileOptions
{
    public const string Score = "score";
    public const string Train = "train";

    /// <summary><see cref="Score"/>: the teacher's scoring of <see cref="Data"/>; <see cref="Train"/>: training <see cref="Arch"/> on it.</summary>
    public string Stage { get; init; } = Score;
    /// <summary>The teacher, for scoring.</summary>
    public string? Teacher { get; init; }
    /// <summary>The architecture trained, for training.</summary>
    public string? Arch { get; init; }
    public required string Data { get; init; }
    /// <summary>How long to run; the data is read round and round until then. Null: one pass over the data.</summary>
    public TimeSpan? Duration { get; init; } = TimeSpan.FromSeconds(20);
    /// <summary>
    /// The graph's knobs: every one for scoring; for training, its batch (the training batch), decode workers and compute.
    /// </summary>
    public ScoringSpec Scoring { get; init; } = new();
    public TimeSpan Interval { get; init; } = TimeSpan.FromMilliseconds(100);
    /// <summary>Sample the counters at all (off: the same run, unprofiled, to measure the profiler's own cost).</summary>
    public bool Sample { get; init; } = true;

    /// <summary>The settings as a flat map, for the report.</summary>
    public IReadOnlyDictionary<string, object?> Describe() => new SortedDictionary<string, object?>(StringComparer.Ordinal)
    {
        ["stage"] = Stage, ["teacher"] = Teacher, ["arch"] = Arch, ["data"] = Data, ["duration_s"] = Duration?.TotalSeconds, ["top_p"] = Scoring.TopP,
        ["batch"] = Scoring.Batch, ["decode_workers"] = Scoring.DecodeWorkers, ["threads"] = Scoring.Compute.ResolvedThreads, ["device"] = Scoring.Compute.Device,
        ["interval_ms"] = Interval.TotalMilliseconds, ["cores"] = Environment.ProcessorCount,
    };
}

/// <summary>What one profiled run measured.</summary>
public sealed record ProfileRun(ProfileOptions Options, IReadOnlyList<ProfileSample> Samples, ProfileVerdict? Verdict, long Images, TimeSpan Elapsed)
{
    /// <summary>Time the sampler itself spent taking samples (zero with sampling off).</summary>
    public TimeSpan SamplerTime { get; init; }

    public double ImagesPerSecond => Elapsed.TotalSeconds > 0 ? Images / Elapsed.TotalSeconds : 0;
}

/// <summary>
/// Runs a graph for a while with its counters sampled, and says where the time goes.
/// <list type="bullet">
/// <item>Scoring: <see cref="ScoreGraph"/>, the graph of <c>score</c> and the daemon. Score shards are written (to a
/// scratch folder, deleted at the end), so the write stage does its real work.</item>
/// <item>Training: the loader of <c>train</c> (<see cref="BatchLoader"/>: read, decode + augment, batch) feeding
/// <see cref="Trainer.Step"/> (forward, backward, SGD), the same step <c>train</c> takes. Nothing is saved.</item>
/// </list>
/// </summary>
public static class Profiler
{
    public static readonly string[] Knobs = ["batch", "decode-workers", "threads"];

    public static Task<ProfileRun> RunAsync(ProfileOptions o, ITeacher? teacher = null, Action<string>? log = null, CancellationToken cancellationToken = default) => o.Stage switch
    {
        ProfileOptions.Score => RunScoringAsync(o, teacher, cancellationToken),
        ProfileOptions.Train => RunTrainingAsync(o, cancellationToken),
        _ => throw new ArgumentException($"stage '{o.Stage}': the stages that can be profiled are {ProfileOptions.Score} and {ProfileOptions.Train}"),
    };

    private static async Task<ProfileRun> RunScoringAsync(ProfileOptions o, ITeacher? teacher, CancellationToken cancellationToken)
    {
        var dataset = DatasetManifest.Load(o.Data);
        if (dataset.Shards.Count == 0) throw new StreamingException($"{o.Data}: the dataset has no shards");
        if (o.Teacher is null && teacher is null) throw new ArgumentException("profiling the scoring needs a teacher");
        using var scratch = new ScratchScores();
        var setup = new ScoringSetupOptions { Teachers = teacher is null ? FileTeacherSource.Instance : new LentTeacherSource(teacher), NoSelection = true };
        await using var session = await ScoringSession<int>.OpenAsync(o.Scoring, o.Teacher ?? "(stand-in)", scratch, setup, cancellationToken).ConfigureAwait(false);
        using var sampler = o.Sample ? new GraphSampler(session.Stages, o.Interval) : null;
        var clock = Stopwatch.StartNew();
        using var timeUp = new CancellationTokenSource();
        if (o.Duration is TimeSpan d) timeUp.CancelAfter(d);
        await DriveAsync(session, o, dataset, timeUp.Token).ConfigureAwait(false);
        var elapsed = clock.Elapsed;
        long images = session.ImagesInferred; // every image through the model, the last shard's too (cut off, it is not written)
        sampler?.Dispose();
        var samples = sampler?.Samples ?? [];
        var verdict = samples.Count >= 2 ? ProfileAnalysis.Analyse(samples) : null;
        return new ProfileRun(o, samples, verdict, images, elapsed) { SamplerTime = sampler?.SelfTime ?? TimeSpan.Zero };
    }

    /// <summary>The data round and round until the time is up (once, without a duration); the last shard is cut off then.</summary>
    private static async Task DriveAsync(ScoringSession<int> session, ProfileOptions o, DatasetManifest dataset, CancellationToken timeUp)
    {
        try
        {
            bool first = true;
            while (first || (o.Duration is not null && !timeUp.IsCancellationRequested))
            {
                first = false;
                for (int i = 0; i < dataset.Shards.Count && !timeUp.IsCancellationRequested; i++)
                    await session.SendAsync(Path.Combine(o.Data, dataset.Shards[i].File), dataset.Shards[i].File, i, stopReading: timeUp).ConfigureAwait(false);
            }
        }
        catch (Exception e)
        {
            await session.FaultAsync(e).ConfigureAwait(false);
            return;
        }
        await session.DrainAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// The profile's host: score shards into a scratch folder (four files round and round), so that the write stage does
    /// its real work; deleted at the end. The last shard, cut off when the time is up, fails as "stopped" and is not written.
    /// </summary>
    private sealed class ScratchScores : IScoringHost<int>, IDisposable
    {
        private readonly string _folder = Path.Combine(Path.GetTempPath(), "streaming-profile-" + Guid.NewGuid().ToString("N")[..12]);
        private int _written;

        public ScratchScores() => Directory.CreateDirectory(_folder);

        public string ScoreFile(ShardJob shard, int tag) => Path.Combine(_folder, $"score-{_written++ % 4}.parquet");

        public void Dispose() => Directory.Delete(_folder, true);
    }

    /// <summary>
    /// Training: a fresh <see cref="ProfileOptions.Arch"/> (the data's channels, classes and normalization, as
    /// <c>train</c> sets them up) trained with augmentation at a small fixed learning rate, so that a long profile
    /// does not diverge; the rate does not change the work done.
    /// </summary>
    private static async Task<ProfileRun> RunTrainingAsync(ProfileOptions o, CancellationToken cancellationToken)
    {
        if (o.Arch is null) throw new ArgumentException("profiling the training needs an architecture (--arch)");
        var manifest = DatasetManifest.Load(o.Data);
        if (manifest.Labeled == 0) throw new StreamingException($"{o.Data}: has no labeled images to train on");
        Streaming.Models.Compute.Kernels.PinIsa(o.Scoring.Compute.Isa, "compute.isa");
        using var compute = await Streaming.Models.Compute.Kernels.AcquireAsync(o.Scoring.Compute.Threads, o.Scoring.Compute.ChannelsLast, cancellationToken).ConfigureAwait(false);
        var device = TorchDevice.Resolve(o.Scoring.Compute.Device);
        var first = await manifest.FirstImageAsync(o.Data, labeledOnly: true, cancellationToken).ConfigureAwait(false);
        int size = Trainer.DefaultImageSize(o.Arch, first.Width, first.Height);
        var (mean, std) = await Trainer.MeanStdAsync(o.Data, manifest, first.Channels, size, cancellationToken).ConfigureAwait(false);
        var spec = new ModelSpec(o.Arch, manifest.Classes.Count, first.Channels, size, mean, std, manifest.Classes);
        using var model = ModelZoo.Create(o.Arch, spec.NumClasses, spec.InChannels, seed: 0);
        model.to(device);
        MemoryFormat.Apply(model);
        model.train();
        using var sgd = new Sgd(model, 0.9, 1e-4);
        var loader = new BatchLoader(o.Data, new LoaderOptions
        {
            Preprocess = spec.Preprocess(),
            Augment = AugmentationOptions.Default(size),
            BatchSize = o.Scoring.Batch,
            Workers = o.Scoring.DecodeWorkers,
        });
        var train = new StageStats("train") { QueueDepth = () => loader.ReadyBatches };
        using var sampler = o.Sample ? new GraphSampler([.. loader.Stages, train], o.Interval) : null;
        var clock = Stopwatch.StartNew();
        for (long epoch = 0; clock.Elapsed < (o.Duration ?? TimeSpan.MaxValue) && (epoch == 0 || o.Duration is not null); epoch++)
        {
            await foreach (var b in loader.ReadEpochAsync(epoch, 0, cancellationToken).ConfigureAwait(false))
            {
                using (b)
                {
                    train.In(b.Count);
                    long start = Stopwatch.GetTimestamp();
                    float loss = Trainer.Step(model, sgd, b, device, 0.01);
                    train.Busy(Stopwatch.GetTimestamp() - start);
                    train.Out(b.Count);
                    if (!float.IsFinite(loss)) throw new StreamingException($"training {o.Arch} diverged while profiling (loss {loss})");
                }
                if (o.Duration is TimeSpan d && clock.Elapsed >= d) break;
            }
        }
        var elapsed = clock.Elapsed;
        sampler?.Dispose();
        var samples = sampler?.Samples ?? [];
        var verdict = samples.Count >= 2 ? ProfileAnalysis.Analyse(samples) : null;
        return new ProfileRun(o, samples, verdict, train.Snapshot().ItemsOut, elapsed) { SamplerTime = sampler?.SelfTime ?? TimeSpan.Zero };
    }

    /// <summary>A copy of the options with one knob set.</summary>
    public static ProfileOptions With(ProfileOptions o, string knob, int value) => knob switch
    {
        "batch" => o with { Scoring = o.Scoring with { Batch = value } },
        "decode-workers" => o with { Scoring = o.Scoring with { DecodeWorkers = value } },
        "threads" => o with { Scoring = o.Scoring with { Compute = o.Scoring.Compute with { Threads = value } } },
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
    /// What to profile in a pipeline's run (its run.json, written by <c>streaming run</c>), where the images flow:
    /// <list type="bullet">
    /// <item><c>score</c> (the default): the teacher scoring U, with the scoring stage's P' and batch;</item>
    /// <item><c>train</c>: the student's pre-training on D-hat, the largest training job, with its architecture and batch.</item>
    /// </list>
    /// </summary>
    public static ProfileOptions FromPipeline(string manifestPath, string? runFolder, string stage = ProfileOptions.Score)
    {
        if (stage is not (ProfileOptions.Score or ProfileOptions.Train))
            throw new ArgumentException($"--stage {stage}: a pipeline's stages that can be profiled are {ProfileOptions.Score} (the teacher scoring U) and {ProfileOptions.Train} (the student's pre-training on D-hat)");
        var spec = PipelineManifest.Load(manifestPath).Spec;
        runFolder ??= Path.Combine("runs", spec.Name);
        string record = Path.Combine(runFolder, RunRecord.FileName);
        if (!File.Exists(record))
            throw new StreamingException($"{record} not found: run the pipeline first (streaming run {manifestPath} --out {runFolder}), or profile a stage directly (--stage score --teacher MODEL --data DIR, or --stage train --arch NAME --data DIR)");
        var run = RunRecord.Load(record);
        if (stage == ProfileOptions.Train)
        {
            string dhat = run.StageFolder(runFolder, PipelineGraph.DhatImages);
            if (!File.Exists(Path.Combine(dhat, DatasetManifest.FileName)))
                throw new StreamingException($"{dhat}: D-hat's images are missing from the run's cache; run the pipeline again");
            return new ProfileOptions
            {
                Stage = ProfileOptions.Train,
                Arch = spec.StudentArch,
                Data = dhat,
                Scoring = new ScoringSpec { Batch = spec.Student.Batch, Compute = new ComputeSpec { Threads = spec.Scoring.Compute.Threads, Device = spec.Scoring.Compute.Device } },
            };
        }
        string teacher = PipelineGraph.TeacherModelIn(run.StageFolder(runFolder, PipelineGraph.Teacher), spec);
        if (!File.Exists(teacher)) throw new StreamingException($"{teacher}: the teacher is missing from the run's cache; run the pipeline again");
        return new ProfileOptions
        {
            Teacher = teacher,
            Data = Path.Combine(run.StageFolder(runFolder, PipelineGraph.Split), PipelineGraph.UnlabeledFolder),
            Scoring = new ScoringSpec { TopP = spec.Scoring.TopP, Batch = spec.Scoring.Batch, Compute = new ComputeSpec { Threads = spec.Scoring.Compute.Threads, Device = spec.Scoring.Compute.Device } },
        };
    }
}
