using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Streaming.Core;
using Streaming.Core.Options;
using Streaming.Core.Datasets;
using Streaming.Core.Ingest;
using Streaming.Core.Selection;
using Streaming.Core.Tags;
using Streaming.Models.Compute;
using Streaming.Models.Evaluation;
using Streaming.Models.IO;
using Streaming.Core.Dataflow;
using Streaming.Models.Teachers;
using Streaming.Engine.Scoring;
using Streaming.Models.Training;
using Streaming.Models.Loading;

using Streaming.Models;

using Streaming.Core.Compute;

namespace Streaming.Engine.Pipelines;

/// <summary>What one stage did: its cache key, whether it was reused, its output files' hashes, metrics and wall time.</summary>
public sealed record StageRecord(string Name, string Key, bool Reused, double WallSeconds, string Folder,
    IReadOnlyDictionary<string, object> Parameters, IReadOnlyDictionary<string, string> Inputs,
    IReadOnlyDictionary<string, string> Outputs, string OutputSha256, IReadOnlyDictionary<string, double> Metrics);

/// <summary>
/// Runs a pipeline's stages in order: ingest train and test, split into D and U, the supervised
/// baseline, the teacher, scoring U, selection (D-hat), D-hat as images, the student's pre-training and
/// its fine-tuning, each evaluated on the test set.
/// <para>
/// Every stage is content-addressed: its key hashes the stage's parameters and the output hashes of the
/// stages it reads, and its outputs live in <c>cache/NAME-KEY/</c>, written under a temporary name and
/// renamed when complete. A stage whose key already has a folder is reused, so changing K reruns
/// select and what follows, not the teacher or the scoring. Only deterministic artifacts are hashed
/// (shards, models, D-hat), never logs with timings.
/// </para>
/// </summary>
public sealed class PipelineRunner
{
    public const string RunFileName = RunRecord.FileName;
    private const string StageFileName = "stage.json";

    private readonly PipelineManifest _m;
    private readonly string _out;
    private readonly Action<string> _log;
    private readonly IProgress<StageProgress>? _progress;
    private (int Index, string Name) _current;
    private readonly Dictionary<string, StageRecord> _done = new(StringComparer.Ordinal);
    private readonly List<StageRecord> _records = [];
    private ComputeEnvironment? _compute;

    /// <param name="log">Lines for a log: the kernels, each stage's start with its parameters, its end with its metrics.</param>
    /// <param name="progress">Each stage's state as it changes, and the running stage's fraction, images/s and ETA.</param>
    public PipelineRunner(PipelineManifest manifest, string output, Action<string>? log = null, IProgress<StageProgress>? progress = null)
    {
        _m = manifest;
        _out = Path.GetFullPath(output);
        _log = log ?? (_ => { });
        _progress = progress;
    }

    /// <summary>
    /// A reporter of the running stage's progress (a fraction when its total is known, else a count of items), bound to
    /// the stage running when it is made: a report that comes late (a timer's, after its stage ended) still names its own
    /// stage, which the view then ignores.
    /// </summary>
    private Action<double?, double?, TimeSpan?, long?, string?> Running()
    {
        var (index, name) = _current;
        int count = Stages.Count;
        return (fraction, rate, eta, items, detail) =>
            _progress?.Report(new StageProgress(index, count, name, StageState.Running, fraction, rate, eta, items, detail));
    }

    /// <summary>
    /// Progress passed on in the reporting thread. <see cref="Progress{T}"/> would post each report to the thread pool,
    /// where a late one could land after its stage had ended and be taken for the next stage's.
    /// </summary>
    private sealed class Direct<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }

    /// <summary>A <see cref="Direct{T}"/> reporter bound to the stage running now (see <see cref="Running"/>).</summary>
    private Direct<T> Reporter<T>(Action<Action<double?, double?, TimeSpan?, long?, string?>, T> report)
    {
        var running = Running();
        return new Direct<T>(p => report(running, p));
    }

    private static TimeSpan? EtaOf(long done, long total, double rate) =>
        rate > 0 && total >= done ? TimeSpan.FromSeconds((total - done) / rate) : null;

    /// <summary>The stages, in the order they run (without the optional <c>dedup</c>, see <see cref="Stages"/>).</summary>
    public static readonly string[] StageNames =
        ["ingest-train", "ingest-test", "split", "baseline", "teacher", "score", "select", "dhat-images", "student", "finetune"];

    /// <summary>
    /// This run's stages, in order: <see cref="StageNames"/>, with <c>dedup</c> after <c>split</c>, <c>control</c> after
    /// <c>baseline</c>, and the semi-weak stages (<c>tags</c>, <c>teacher-weak</c> before the teacher; the weakly supervised
    /// baseline and balanced-with-tags rows at the end) when the manifest asks for them.
    /// </summary>
    public IReadOnlyList<string> Stages => StagesOf(_m.Spec);

    /// <summary>The stages a manifest runs, in order.</summary>
    public static IReadOnlyList<string> StagesOf(PipelineSpec spec)
    {
        var stages = new List<string>(StageNames[..3]);
        if (spec.DedupAgainstTest) stages.Add("dedup");
        stages.Add("baseline");
        if (spec.EqualBudgetControl) stages.Add("control");
        if (spec.WeakTags) stages.AddRange(["tags", "teacher-weak"]);
        stages.AddRange(StageNames[4..]);
        if (spec.WeakTags) stages.AddRange(["weak-student", "weak-finetune", "tags-select", "tags-images", "tags-student", "tags-finetune"]);
        return stages;
    }

    public string CacheDir => Path.Combine(_out, "cache");

    /// <summary>The prefix of the ids of <c>data.unlabeled</c>'s images in U.</summary>
    public const string UnlabeledIdPrefix = "unlabeled/";

    public async Task<RunRecord> RunAsync(CancellationToken cancellationToken = default)
    {
        Directory.CreateDirectory(CacheDir);
        var clock = Stopwatch.StartNew();
        var started = DateTimeOffset.UtcNow;
        int threads = _m.Spec.Threads;
        Streaming.Models.Compute.Kernels.Configure(_m.Spec.Isa, threads, _m.Spec.ChannelsLast, "compute.isa");
        using var held = await Streaming.Models.Compute.Kernels.AcquireAsync(threads, _m.Spec.ChannelsLast, cancellationToken);
        _compute = Streaming.Models.Compute.Kernels.Current(threads);
        _log($"kernels: {_compute}");
        string device = _m.Spec.Device;
        ulong seed = (ulong)_m.Spec.Seed;

        await Stage("ingest-train", P(("source", _m.Spec.Train), ("source_sha256", Hashing.SourceSha256(_m.Spec.Train))), [], DatasetArtifacts,
            async dir => { await IngestAsync(_m.Spec.Train, "train", dir, cancellationToken); return []; }, cancellationToken);
        await Stage("ingest-test", P(("source", _m.Spec.Test), ("source_sha256", Hashing.SourceSha256(_m.Spec.Test))), [], DatasetArtifacts,
            async dir => { await IngestAsync(_m.Spec.Test, "test", dir, cancellationToken); return []; }, cancellationToken);
        string test = _done["ingest-test"].Folder;
        var distractors = _m.Spec.Distractors is string photos ? new DistractorOptions(photos, _m.Spec.DistractorCount) : null;
        var splitParameters = P(("labeled_per_class", _m.Spec.LabeledPerClass), ("seed", seed));
        string? unlabeledSource = _m.Spec.Unlabeled;
        if (unlabeledSource is not null)
        {
            // Only with a separate U: the keys of a plain split stay as they were, and so does its cache.
            splitParameters["unlabeled_source"] = unlabeledSource;
            splitParameters["unlabeled_source_sha256"] = Hashing.SourceSha256(unlabeledSource);
        }
        if (distractors is not null)
        {
            // Only with distractors: the keys of a plain split stay as they were, and so does its cache.
            splitParameters["distractors"] = distractors.Count;
            splitParameters["distractor_photos_sha256"] = Hashing.SourceSha256(distractors.Photos);
        }
        await Stage("split", splitParameters, ["ingest-train"],
            dir => DatasetArtifacts(Path.Combine(dir, "d")).Select(f => "d/" + f).Concat(DatasetArtifacts(Path.Combine(dir, "u")).Select(f => "u/" + f)),
            async dir =>
            {
                // labeled_per_class 0: all of train is D, and U is the separate collection alone (the paper's setting).
                int perClass = _m.Spec.LabeledPerClass is 0 ? DatasetSplitter.AllLabeled : _m.Spec.LabeledPerClass;
                string? extra = null;
                if (unlabeledSource is not null)
                {
                    extra = Path.Combine(dir, "unlabeled-source.tmp");
                    await IngestAsync(unlabeledSource, "unlabeled", extra, cancellationToken, idPrefix: UnlabeledIdPrefix);
                }
                SplitResult r;
                try
                {
                    r = await DatasetSplitter.SplitAsync(_done["ingest-train"].Folder, perClass, seed, Path.Combine(dir, "d"), Path.Combine(dir, "u"),
                        cancellationToken: cancellationToken, distractors: distractors, extraUnlabeled: extra);
                }
                finally
                {
                    if (extra is not null && Directory.Exists(extra)) Directory.Delete(extra, true);
                }
                var metrics = new Dictionary<string, double> { ["labeled"] = r.Labeled.Rows, ["unlabeled"] = r.Unlabeled.Rows };
                if (distractors is not null) metrics["distractors"] = distractors.Count;
                return metrics;
            }, cancellationToken);
        string d = Path.Combine(_done["split"].Folder, "d"), u = Path.Combine(_done["split"].Folder, "u");
        string uStage = "split";
        if (_m.Spec.DedupAgainstTest)
        {
            // U without the duplicates of the test set (exact, or a dHash within the threshold), before anything reads it.
            await Stage("dedup", P(("against", "test"), ("max_hamming", _m.Spec.DedupMaxHamming), ("hash", "sha256 bytes, sha256 pixels, dhash 17x16 margin 2")),
                ["split", "ingest-test"],
                dir => DatasetArtifacts(Path.Combine(dir, "u")).Select(f => "u/" + f).Append(Dedup.Deduplicator.DuplicatesFile),
                async dir =>
                {
                    string report = Path.Combine(dir, "report");
                    var (summary, pairs) = await Dedup.Deduplicator.RunAsync(new Dedup.DedupOptions
                    {
                        Data = u, Against = [test], Out = report, MaxHamming = _m.Spec.DedupMaxHamming, Threads = threads,
                    }, _log, null, cancellationToken);
                    File.Move(Path.Combine(report, Dedup.Deduplicator.DuplicatesFile), Path.Combine(dir, Dedup.Deduplicator.DuplicatesFile));
                    await Dedup.Deduplicator.RemoveAsync(u, pairs.Select(p => p.Id).ToHashSet(StringComparer.Ordinal), Path.Combine(dir, "u"), cancellationToken);
                    var metrics = new Dictionary<string, double> { ["dedup_removed"] = pairs.Count };
                    foreach (var (kind, n) in summary.Kinds) metrics["dedup_" + kind] = n;
                    return metrics;
                }, cancellationToken);
            u = Path.Combine(_done["dedup"].Folder, "u");
            uStage = "dedup";
        }

        string studentArch = _m.Spec.StudentArch;
        var spec = _m.Spec;
        await TrainStage("baseline", spec.Baseline, studentArch, d, ["split"], null, "baseline", test, seed, threads, device, cancellationToken);
        if (spec.EqualBudgetControl)
            await TrainStage("control", spec.Control, studentArch, d, ["split"], null, "control", test, seed, threads, device, cancellationToken);

        (string Folder, string Described)? tagTargets = null;
        if (spec.WeakTags)
        {
            // W: U's tagged images. Its tags are U's own (an ingested tags column), or drawn by the tag-noise model with wrong
            // tags towards the classes the baseline confuses (the "stated confusion matrix").
            bool column = spec.WeakTagsFrom == "column";
            await Stage("tags", column ? P(("source", "the tags column of U")) : P(("model", "tag-noise"), ("seed", seed), ("confusion", "the baseline stage's eval-test.json")),
                column ? [uStage] : [uStage, "baseline"],
                dir => DatasetArtifacts(Path.Combine(dir, WeakLabels.DatasetFolder)).Select(f => WeakLabels.DatasetFolder + "/" + f)
                    .Concat(ScoreArtifacts(Path.Combine(dir, WeakLabels.TagsFolder)).Select(f => WeakLabels.TagsFolder + "/" + f)),
                async dir =>
                {
                    var r = column ? await WeakLabels.FromColumnAsync(u, dir, cancellationToken)
                        : await WeakLabels.MakeAsync(u, dir, new TagNoiseModel { Seed = seed, Confusion = WeakLabels.ReadConfusion(Path.Combine(_done["baseline"].Folder, "eval-test.json")) },
                            cancellationToken);
                    _log("      tags: " + WeakLabels.Describe(r));
                    var metrics = new Dictionary<string, double> { ["tagged_images"] = r.Quality.Tagged };
                    if (!double.IsNaN(r.Quality.Precision))
                    {
                        metrics["tag_precision"] = Math.Round(r.Quality.Precision, 4);
                        metrics["tag_recall"] = Math.Round(r.Quality.Recall, 4);
                    }
                    return metrics;
                }, cancellationToken);
            tagTargets = (Path.Combine(_done["tags"].Folder, WeakLabels.TagsFolder), "weak: the tags stage's tags, each 1/count");
        }
        string w = spec.WeakTags ? Path.Combine(_done["tags"].Folder, WeakLabels.DatasetFolder) : "";

        if (_m.Spec.TeacherArch is string teacherArch)
        {
            if (spec.WeakTags)
            {
                // The semi-weakly supervised teacher: pre-trained on W's tags, then fine-tuned on D (its teacher section).
                await TrainStage("teacher-weak", spec.Weak, teacherArch, w, ["tags"], null, "teacher_weak", test, seed, threads, device, cancellationToken, tagTargets);
                await TrainStage("teacher", spec.Teacher!, teacherArch, d, ["split", "teacher-weak"], "teacher-weak", "teacher", test, seed, threads, device, cancellationToken);
            }
            else await TrainStage("teacher", spec.Teacher!, teacherArch, d, ["split"], null, "teacher", test, seed, threads, device, cancellationToken);
        }
        else
        {
            string model = _m.Spec.TeacherModel!;
            await Stage("teacher", P(("model_sha256", Hashing.Sha256File(model)), ("file", Path.GetFileName(model))), ["ingest-test"], _ => [Path.GetFileName(model)],
                async dir =>
                {
                    File.Copy(model, Path.Combine(dir, Path.GetFileName(model)));
                    var metrics = new Dictionary<string, double>();
                    if (!model.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase))
                        metrics["teacher"] = (await EvaluateAsync(Path.Combine(dir, Path.GetFileName(model)), test, device, cancellationToken)).Top1;
                    else _log("note: an ONNX teacher is not evaluated on the test set here (use 'streaming eval' with its architecture)");
                    return metrics;
                }, cancellationToken);
        }
        string teacherModel = TeacherModel();

        await Stage("score", P(("top_p", _m.Spec.TopP), ("batch", _m.Spec.ScoringBatch), ("kernels", Streaming.Models.Compute.Kernels.KernelKey(_compute))), [uStage, "teacher"], dir => ScoreArtifacts(dir),
            async dir =>
            {
                var r = await ScoreEngine.RunAsync(new ScoreOptions
                {
                    Teacher = teacherModel, Data = u, Out = dir, Scoring = _m.Spec.Scoring with { K = null, Compute = _m.Spec.Scoring.Compute with { Threads = threads } },
                }, Reporter<(long Scored, long Total, double Rate)>((running, p) => running(p.Total > 0 ? (double)p.Scored / p.Total : null, p.Rate,
                    EtaOf(p.Scored, p.Total, p.Rate), p.Scored, null)), _log, cancellationToken);
                if (r.FailedShards.Count > 0) throw new StreamingException($"scoring: {r.FailedShards.Count} shards of U failed ({string.Join("; ", r.FailedShards)})");
                return new() { ["images_scored"] = r.ImagesScored, ["scoring_images_per_second"] = Math.Round(r.ImagesPerSecond, 1) };
            }, cancellationToken);

        var balance = _m.Spec.Balance;
        await Stage("select", P(("k", _m.Spec.K), ("p", _m.Spec.P), ("balance", BalanceModes.Name(_m.Spec.Balance)), ("seed", seed)), ["score", "split"],
            _ => [SelectionManifest.DhatFileName],
            async dir =>
            {
                var sel = await SelectFromScores.RunAsync(_done["score"].Folder, _m.Spec.K, _m.Spec.P, dir, balance, seed, cancellationToken);
                var metrics = new Dictionary<string, double> { ["dhat_rows"] = sel.Selected, ["dhat_distinct_images"] = sel.DistinctImages };
                var pairs = await SelectionImages.ReadPairsAsync(dir, cancellationToken);
                if (await PrecisionAsync(pairs, u, cancellationToken) is double precision) metrics["pseudo_label_precision"] = precision;
                if (distractors is not null) metrics["dhat_distractor_share"] = DistractorShare(pairs);
                if (unlabeledSource is not null)
                {
                    // How many of the separate collection's images the ranking let into D-hat (out-of-domain ones, when its classes differ).
                    int fromSource = pairs.Count(p => p.Id.StartsWith(UnlabeledIdPrefix, StringComparison.Ordinal));
                    metrics["dhat_unlabeled_source_rows"] = fromSource;
                    metrics["dhat_unlabeled_source_share"] = pairs.Count == 0 ? 0 : fromSource / (double)pairs.Count;
                }
                return metrics;
            }, cancellationToken);

        var classes = DatasetManifest.Load(d).Classes;
        await Stage("dhat-images", P(), uStage == "split" ? ["select", "split"] : ["select", "split", uStage], DatasetArtifacts,
            async dir =>
            {
                var m = await SelectionImages.MaterializeAsync(_done["select"].Folder, u, dir, classes, cancellationToken);
                return new() { ["dhat_images_written"] = m.Rows };
            }, cancellationToken);

        bool soft = _m.Spec.SoftTargets;
        await TrainStage("student", spec.Student, studentArch, _done["dhat-images"].Folder, soft ? ["dhat-images", "score"] : ["dhat-images"], null, "student_pretrained", test, seed, threads, device, cancellationToken,
            softTargets: soft ? (_done["score"].Folder, "soft: the score stage's top-P' probabilities") : null);
        await TrainStage("finetune", spec.Finetune, studentArch, d, ["student", "split"], "student", "student_finetuned", test, seed, threads, device, cancellationToken);

        if (spec.WeakTags)
        {
            // Table 6's weakly supervised baseline: the student's architecture pre-trained on W's tags, then fine-tuned on D.
            await TrainStage("weak-student", spec.Weak, studentArch, w, ["tags"], null, "weak_pretrained", test, seed, threads, device, cancellationToken, tagTargets);
            await TrainStage("weak-finetune", spec.Finetune, studentArch, d, ["weak-student", "split"], "weak-student", "weak_finetuned", test, seed, threads, device, cancellationToken);

            // Table 5's balanced-with-tags: K images a class drawn at random among those tagged with it, then as the student.
            string tagScores = Path.Combine(_done["tags"].Folder, WeakLabels.TagsFolder);
            await Stage("tags-select", P(("k", spec.K), ("balance", "random"), ("seed", seed)), ["tags"], _ => [SelectionManifest.DhatFileName],
                async dir =>
                {
                    int tagged = ScoringManifest.Load(tagScores).TopP;
                    var sel = await SelectFromScores.RunAsync(tagScores, spec.K, tagged, dir, BalanceMode.Random, seed, cancellationToken);
                    var metrics = new Dictionary<string, double> { ["tags_dhat_rows"] = sel.Selected };
                    if (await PrecisionAsync(await SelectionImages.ReadPairsAsync(dir, cancellationToken), u, cancellationToken) is double precision)
                        metrics["tags_dhat_precision"] = precision;
                    return metrics;
                }, cancellationToken);
            await Stage("tags-images", P(), ["tags-select", "split", uStage], DatasetArtifacts,
                async dir => new() { ["tags_dhat_images_written"] = (await SelectionImages.MaterializeAsync(_done["tags-select"].Folder, u, dir, classes, cancellationToken)).Rows },
                cancellationToken);
            await TrainStage("tags-student", spec.Student, studentArch, _done["tags-images"].Folder, ["tags-images"], null, "tags_pretrained", test, seed, threads, device, cancellationToken);
            await TrainStage("tags-finetune", spec.Finetune, studentArch, d, ["tags-student", "split"], "tags-student", "tags_finetuned", test, seed, threads, device, cancellationToken);
        }

        var run = new RunRecord
        {
            Manifest = _m.Path,
            ManifestSha256 = File.Exists(_m.Path) ? Hashing.Sha256File(_m.Path) : null,
            Resolved = new SortedDictionary<string, JsonElement>(_m.Values.ToDictionary(kv => kv.Key, kv => JsonSerializer.SerializeToElement(kv.Value)), StringComparer.Ordinal),
            Metrics = new SortedDictionary<string, double>(_records.SelectMany(r => r.Metrics).ToDictionary(kv => kv.Key, kv => kv.Value), StringComparer.Ordinal),
            Stages = _records.Select(r => new StageEntry(r.Name, r.Key, r.Reused, Math.Round(r.WallSeconds, 1), Path.GetRelativePath(_out, r.Folder),
                new SortedDictionary<string, JsonElement>(r.Parameters.ToDictionary(kv => kv.Key, kv => JsonSerializer.SerializeToElement(kv.Value)), StringComparer.Ordinal),
                new SortedDictionary<string, string>(r.Inputs.ToDictionary(), StringComparer.Ordinal), new SortedDictionary<string, string>(r.Outputs.ToDictionary(), StringComparer.Ordinal),
                r.OutputSha256, new SortedDictionary<string, double>(r.Metrics.ToDictionary(), StringComparer.Ordinal))).ToList(),
            Started = started.ToString("o", CultureInfo.InvariantCulture),
            WallSeconds = Math.Round(clock.Elapsed.TotalSeconds, 1),
            Machine = MachineInfo.Here(threads),
            Compute = _compute,
            Versions = new(StringComparer.Ordinal)
            {
                ["engine"] = typeof(PipelineRunner).Assembly.GetName().Version?.ToString(),
                ["dotnet"] = Environment.Version.ToString(),
                ["torchsharp"] = typeof(TorchSharp.torch).Assembly.GetName().Version?.ToString(),
                ["torch_backend"] = TorchDevice.Backend,
            },
        };
        run.Save(Path.Combine(_out, RunRecord.FileName));
        return run;
    }

    /// <summary>The stages' records so far, in order.</summary>
    public IReadOnlyList<StageRecord> Records => _records;

    private string TeacherModel()
    {
        string folder = _done["teacher"].Folder;
        return _m.Spec.TeacherModel is string model ? Path.Combine(folder, Path.GetFileName(model)) : Path.Combine(folder, ModelFile.DefaultName);
    }

    /// <summary>
    /// A training stage: <paramref name="arch"/> trained on <paramref name="data"/> with <paramref name="section"/>'s budget,
    /// from <paramref name="initStage"/>'s model when given, then evaluated on the test set (metric <paramref name="metric"/>).
    /// </summary>
    private Task TrainStage(string stage, TrainingSection section, string arch, string data, string[] inputs, string? initStage, string metric, string test, ulong seed, int threads,
        string device, CancellationToken ct, (string Folder, string Described)? softTargets = null)
    {
        string? init = initStage is null ? null : Path.Combine(_done[initStage].Folder, ModelFile.DefaultName);
        var parameters = P(("arch", arch), ("images", section.Images), ("batch", section.Batch), ("lr", section.Lr),
            ("schedule", section.Schedule), ("seed", seed), ("threads", threads), ("init", initStage is null ? "" : $"the {initStage} stage's model"),
            ("kernels", Streaming.Models.Compute.Kernels.KernelKey(_compute!)));
        // Only soft targets add a key, so that the hard-label stages' cache keys stay as they were.
        if (softTargets is { } st) parameters["targets"] = st.Described;
        return Stage(stage, parameters, inputs, _ => [ModelFile.DefaultName], async dir =>
        {
            var schedule = Enum.Parse<ScheduleKind>(section.Schedule, ignoreCase: true);
            var result = await Trainer.RunAsync(new TrainOptions
            {
                Data = data, Arch = arch, Out = dir, Images = section.Images, BatchSize = section.Batch, BaseLr = section.Lr,
                Schedule = schedule, Init = init, Device = device, Seed = seed, Threads = threads, Overwrite = true, SoftTargets = softTargets?.Folder,
                WeightDecay = 1e-4, Augment = true, // the pipelines' (not the train command's recipe: their stages' keys do not name these)
            }, Reporter<TrainProgress>((running, p) => running(p.TotalImages > 0 ? (double)p.ImagesSeen / p.TotalImages : null, p.ImagesPerSecond,
                EtaOf(p.ImagesSeen, p.TotalImages, p.ImagesPerSecond), p.ImagesSeen, string.Create(CultureInfo.InvariantCulture, $"loss {p.Loss:F4}"))), _log, ct);
            var eval = await EvaluateAsync(result.ModelPath, test, device, ct);
            await File.WriteAllTextAsync(Path.Combine(dir, "eval-test.json"), eval.ToJson(), ct);
            return new() { [metric] = eval.Top1, [metric + "_train_images_per_second"] = Math.Round(result.ImagesPerSecond, 1) };
        }, ct);
    }

    private async Task<EvalResult> EvaluateAsync(string modelPath, string test, string device, CancellationToken ct)
    {
        var dev = TorchDevice.Resolve(device);
        var (net, spec) = ModelFile.Load(modelPath, null, dev);
        using (net) return await Evaluator.EvaluateAsync(net, spec, test, dev, _m.Spec.EvalBatch, _m.Spec.EvalWorkers, Path.GetFullPath(modelPath), ct);
    }

    /// <summary>The fraction of D-hat rows (its (class, id) pairs) that are distractors (random crops of photos, of no class).</summary>
    public static double DistractorShare(IReadOnlyList<(int Class, string Id)> pairs) =>
        pairs.Count == 0 ? 0 : pairs.Count(p => Distractors.IsDistractor(p.Id)) / (double)pairs.Count;

    /// <summary>The fraction of D-hat rows (its (class, id) pairs) whose withheld true label is the class they were selected for; null when U has no withheld labels.</summary>
    public static async Task<double?> PrecisionAsync(IReadOnlyList<(int Class, string Id)> pairs, string unlabeled, CancellationToken ct)
    {
        var manifest = DatasetManifest.Load(unlabeled);
        if (manifest.WithheldLabelsFile is null) return null;
        var truth = await DatasetSplitter.ReadWithheldAsync(Path.Combine(unlabeled, manifest.WithheldLabelsFile), ct);
        if (pairs.Count == 0) return null;
        return pairs.Count(p => truth.TryGetValue(p.Id, out int y) && y == p.Class) / (double)pairs.Count;
    }

    private async Task IngestAsync(string source, string name, string dir, CancellationToken ct, string idPrefix = "")
    {
        var src = ImageSource.Open(source);
        // Ingested shards do not depend on the worker count (IngestTests), so it is not part of the stage's key.
        await Ingestor.RunAsync(src, dir, new IngestOptions { Workers = _m.Spec.IngestWorkers, Name = name, IdPrefix = idPrefix,
            Writer = new DatasetWriterOptions { Overwrite = true } },
            Reporter<IngestProgress>((running, p) => running(null, p.Elapsed.TotalSeconds > 0 ? p.Read / p.Elapsed.TotalSeconds : null, null, p.Read,
                idPrefix.Length > 0 ? "the unlabeled collection" : null)), ct);
    }

    private static IEnumerable<string> DatasetArtifacts(string dir) =>
        Directory.Exists(dir) ? Directory.GetFiles(dir, "*.parquet").Select(Path.GetFileName).Order(StringComparer.Ordinal)! : [];

    private static IEnumerable<string> ScoreArtifacts(string dir) =>
        Directory.GetFiles(Path.Combine(dir, ScoringManifest.ScoresFolder), "*.parquet").Select(f => ScoringManifest.ScoresFolder + "/" + Path.GetFileName(f)).Order(StringComparer.Ordinal);

    private static SortedDictionary<string, object> P(params (string Key, object Value)[] items)
    {
        var d = new SortedDictionary<string, object>(StringComparer.Ordinal);
        foreach (var (k, v) in items) d[k] = v;
        return d;
    }

    private async Task Stage(string name, SortedDictionary<string, object> parameters, string[] inputs, Func<string, IEnumerable<string>> artifacts,
        Func<string, Task<Dictionary<string, double>>> run, CancellationToken ct)
    {
        int index = Stages.ToList().IndexOf(name) + 1;
        int count = Stages.Count;
        _current = (index, name);
        var inputHashes = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var i in inputs) inputHashes[i] = _done[i].OutputSha256;
        string identity = JsonSerializer.Serialize(new { stage = name, version = 1, parameters, inputs = inputHashes });
        string key = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(identity)))[..16];
        string folder = Path.Combine(CacheDir, $"{name}-{key}");
        string marker = Path.Combine(folder, StageFileName);
        StageRecord record;
        if (File.Exists(marker))
        {
            var saved = JsonSerializer.Deserialize<StageFile>(File.ReadAllText(marker))!;
            record = new StageRecord(name, key, true, saved.WallSeconds, folder, parameters, inputHashes, saved.Outputs, saved.OutputSha256, saved.Metrics);
            _log($"[{index}/{count}] {name}: reused {Path.GetRelativePath(_out, folder)} (inputs and parameters unchanged)");
            _progress?.Report(new StageProgress(index, count, name, StageState.Reused, Summary: "reused"));
        }
        else
        {
            _log($"[{index}/{count}] {name}: running ({string.Join(", ", parameters.Select(kv => $"{kv.Key}={Fmt(kv.Value)}"))})");
            _progress?.Report(new StageProgress(index, count, name, StageState.Running));
            string temp = Path.Combine(CacheDir, $".{name}-{key}.tmp-{Environment.ProcessId}");
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            Directory.CreateDirectory(temp);
            var clock = Stopwatch.StartNew();
            var metrics = await run(temp);
            clock.Stop();
            var outputs = new SortedDictionary<string, string>(StringComparer.Ordinal);
            foreach (var f in artifacts(temp)) outputs[f] = Hashing.Sha256File(Path.Combine(temp, f));
            if (outputs.Count == 0) throw new StreamingException($"stage {name}: produced no output files");
            string outputSha = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Concat(outputs.Select(kv => $"{kv.Key} {kv.Value}\n")))));
            var sortedMetrics = new SortedDictionary<string, double>(metrics, StringComparer.Ordinal);
            await File.WriteAllTextAsync(Path.Combine(temp, StageFileName), JsonSerializer.Serialize(new StageFile(name, key, clock.Elapsed.TotalSeconds, outputs, outputSha, sortedMetrics),
                new JsonSerializerOptions { WriteIndented = true }), ct);
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
            AtomicFile.CommitDirectory(temp, folder);
            record = new StageRecord(name, key, false, clock.Elapsed.TotalSeconds, folder, parameters, inputHashes, outputs, outputSha, sortedMetrics);
            string shown = string.Join(", ", sortedMetrics.Where(kv => !kv.Key.EndsWith("per_second", StringComparison.Ordinal)).Select(kv => $"{kv.Key} {Fmt(kv.Value)}"));
            _log($"      {name}: done in {clock.Elapsed.TotalSeconds:F1} s{(shown.Length > 0 ? "; " + shown : "")}");
            _progress?.Report(new StageProgress(index, count, name, StageState.Done,
                Summary: string.Create(CultureInfo.InvariantCulture, $"{clock.Elapsed.TotalSeconds:F1} s{(shown.Length > 0 ? "; " + shown : "")}")));
        }
        _done[name] = record;
        _records.Add(record);
    }

    private static string Fmt(object v) => v switch
    {
        double d => d.ToString("0.####", CultureInfo.InvariantCulture),
        _ => Convert.ToString(v, CultureInfo.InvariantCulture) ?? "",
    };

    private sealed record StageFile(string Name, string Key, double WallSeconds, IReadOnlyDictionary<string, string> Outputs, string OutputSha256,
        IReadOnlyDictionary<string, double> Metrics);

}
