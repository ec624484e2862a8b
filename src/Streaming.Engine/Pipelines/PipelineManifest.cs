using Streaming.Core;
using Streaming.Core.Config;

using Streaming.Core.Compute;

using Streaming.Core.Options;

namespace Streaming.Engine.Pipelines;

/// <summary>
/// A pipeline manifest (YAML): datasets, teacher, scoring, student, fine-tuning, seed and device. Parsed
/// against a fixed schema (<see cref="ConfigSchema"/>), so that a bad manifest fails before any work with the
/// key and the line: unknown keys, wrong types, missing files and out-of-range numbers (a negative K) are all
/// errors. Its values are typed once (<see cref="Spec"/>); the flat map of dotted keys (<c>scoring.k</c>), which is also what
/// <c>--set</c> takes, is what run.json records and the stage cache keys hash.
/// </summary>
public sealed class PipelineManifest
{
    internal static readonly ConfigSchema Schema = new("a manifest",
    [
        new ConfigKey("name", OptionKind.Text, "pipeline", "a name for the run"),
        new ConfigKey("seed", OptionKind.Int, 0, "seed of the split, initialisations, data order and augmentation", Min: 0),
        ConfigKey.From(Knobs.Device),
        ConfigKey.From(Knobs.Threads, help: Knobs.Threads.Help + "; run.json records the count used, so a replay uses it too"),
        ConfigKey.From(Knobs.Isa),
        ConfigKey.From(Knobs.ChannelsLast),
        ConfigKey.From(Knobs.IngestWorkers),
        ConfigKey.From(Knobs.EvalBatch),
        ConfigKey.From(Knobs.EvalWorkers),
        new ConfigKey("data.train", OptionKind.File, null, "the labeled training source (idx, folder, tar, parquet), split into D and U"),
        new ConfigKey("data.test", OptionKind.File, null, "the labeled evaluation source"),
        new ConfigKey("data.labeled_per_class", OptionKind.Int, 100, "images a class in D; the rest of train joins U, its labels withheld (0: all of train is D, with data.unlabeled)", Min: 0),
        new ConfigKey("data.unlabeled", OptionKind.File, null, "optional: a separate unlabeled collection (idx, folder, tar, parquet) that joins U whole, as the paper's YFCC100M / IG-1B"),
        new ConfigKey("data.distractors", OptionKind.File, null, "optional: a folder of photos; random crops of them (images of no class) are added to U"),
        new ConfigKey("data.distractor_count", OptionKind.Int, 10_000, "with data.distractors: how many crops to add to U", Min: 1),
        new ConfigKey("data.dedup_against", OptionKind.Choice, "none", "test: remove from U, before scoring, the images that duplicate a test image (exact bytes or pixels, or a dHash within data.dedup_max_hamming whose cells are within data.dedup_max_cell_rms), recorded in run.json; none: keep U whole", ["none", "test"]),
        new ConfigKey("data.dedup_max_hamming", OptionKind.Int, Dedup.DedupOptions.DefaultMaxHamming, "with data.dedup_against: the largest dHash distance (bits of 256) at which an image is a candidate duplicate", Min: 0) { Max = 256 },
        new ConfigKey("data.dedup_max_cell_rms", OptionKind.Number, Dedup.DedupOptions.DefaultMaxCellRms, "with data.dedup_against: the largest RMS (levels of 255) between a candidate's 17 x 16 luma cells and the image's that counts as a duplicate", Min: 0),
        new ConfigKey("teacher.arch", OptionKind.Text, null, "the teacher's architecture, trained on D"),
        new ConfigKey("teacher.model", OptionKind.File, null, "an imported teacher instead (.safetensors, .pt or .onnx)"),
        new ConfigKey("teacher.images", OptionKind.Long, 55_000L, "training budget in images", Min: 1),
        new ConfigKey("teacher.batch", OptionKind.Int, 128, "batch size", Min: 1),
        new ConfigKey("teacher.lr", OptionKind.Number, 0.1, "base learning rate at batch 256", Min: 0),
        new ConfigKey("teacher.schedule", OptionKind.Choice, "cosine", "learning-rate schedule", ["cosine", "pretrain", "finetune", "constant"]),
        new ConfigKey("teacher.recipe", OptionKind.Bool, false, "train the teacher by the train command's recipe for its architecture and D's size (budget, schedule, lr, weight decay, augmentation: README, streaming train) instead of teacher.images/lr/schedule"),
        new ConfigKey("teacher.ranks", OptionKind.Int, 1, "processes that train it data-parallel under mpirun (the global batch split over them, BatchNorm statistics per rank); part of the stage's key when above 1", Min: 1) { Max = 4096 },
        new ConfigKey("compute.hosts", OptionKind.Text, "", "where the stages with ranks above 1 run: mpirun's -H list (e.g. a:4,b:4); empty: this machine"),
        ConfigKey.From(Knobs.TopP),
        ConfigKey.From(Knobs.K),
        ConfigKey.From(Knobs.P),
        ConfigKey.From(Knobs.Balance),
        ConfigKey.From(Knobs.ScoringBatch),
        ConfigKey.From(Knobs.DecodeWorkers),
        new ConfigKey("student.arch", OptionKind.Text, null, "the student's architecture"),
        new ConfigKey("student.images", OptionKind.Long, 100_000L, "pre-training budget on D-hat in images", Min: 1),
        new ConfigKey("student.batch", OptionKind.Int, 128, "batch size", Min: 1),
        new ConfigKey("student.lr", OptionKind.Number, 0.1, "base learning rate at batch 256", Min: 0),
        new ConfigKey("student.schedule", OptionKind.Choice, "pretrain", "learning-rate schedule", ["cosine", "pretrain", "finetune", "constant"]),
        new ConfigKey("student.ranks", OptionKind.Int, 1, "processes that train it data-parallel under mpirun (the global batch split over them, BatchNorm statistics per rank); part of the stage's key when above 1", Min: 1) { Max = 4096 },
        new ConfigKey("student.targets", OptionKind.Choice, "hard", "pseudo-labels: hard (the paper: the class each image was selected for) or soft (the teacher's top-P' probabilities of each image, renormalized)", ["hard", "soft"]),
        new ConfigKey("finetune.images", OptionKind.Long, 30_000L, "fine-tuning budget on D in images", Min: 1),
        new ConfigKey("finetune.batch", OptionKind.Int, 128, "batch size", Min: 1),
        new ConfigKey("finetune.lr", OptionKind.Number, 0.02, "base learning rate at batch 256", Min: 0),
        new ConfigKey("finetune.schedule", OptionKind.Choice, "finetune", "learning-rate schedule", ["cosine", "pretrain", "finetune", "constant"]),
        new ConfigKey("finetune.ranks", OptionKind.Int, 1, "processes that train it data-parallel under mpirun (the global batch split over them, BatchNorm statistics per rank); part of the stage's key when above 1", Min: 1) { Max = 4096 },
        new ConfigKey("baseline.images", OptionKind.Long, 55_000L, "budget of the supervised baseline (the student's architecture on D only)", Min: 1),
        new ConfigKey("baseline.batch", OptionKind.Int, 128, "batch size", Min: 1),
        new ConfigKey("baseline.lr", OptionKind.Number, 0.1, "base learning rate at batch 256", Min: 0),
        new ConfigKey("baseline.schedule", OptionKind.Choice, "cosine", "learning-rate schedule", ["cosine", "pretrain", "finetune", "constant"]),
        new ConfigKey("baseline.ranks", OptionKind.Int, 1, "processes that train it data-parallel under mpirun (the global batch split over them, BatchNorm statistics per rank); part of the stage's key when above 1", Min: 1) { Max = 4096 },
        new ConfigKey("baseline.equal_budget", OptionKind.Bool, false, "also train the equal-budget control: the baseline given the student's whole budget (student.images + finetune.images), stage 'control'"),
        new ConfigKey("weak.tags", OptionKind.Choice, "none", "the semi-weakly supervised setting (§3.3): the teacher is pre-trained on W's tags, then fine-tuned on D, and the run also trains the weakly supervised baseline and the balanced-with-tags student. W is U's tagged images, with column: U's own tags column (ingested weak labels), or noise: hashtag-like tags that the tag-noise model draws from U's withheld labels (its confusable classes from the baseline's confusion matrix). none: a teacher trained on D only", ["none", "noise", "column"]),
        new ConfigKey("weak.images", OptionKind.Long, 100_000L, "with weak.tags: the pre-training budget on W's tags in images (the teacher's and the weakly supervised baseline's)", Min: 1),
        new ConfigKey("weak.batch", OptionKind.Int, 128, "batch size", Min: 1),
        new ConfigKey("weak.lr", OptionKind.Number, 0.1, "base learning rate at batch 256", Min: 0),
        new ConfigKey("weak.schedule", OptionKind.Choice, "pretrain", "learning-rate schedule", ["cosine", "pretrain", "finetune", "constant"]),
    ], "scoring.k=2000", alternatives: [["teacher.arch", "teacher.model"]]);

    private readonly SortedDictionary<string, object> _values;

    private PipelineManifest(string path, SortedDictionary<string, object> values)
    {
        Path = path;
        _values = values;
        Spec = PipelineSpec.From(values);
    }

    /// <summary>The settings, typed: what the runner reads.</summary>
    public PipelineSpec Spec { get; }

    /// <summary>The manifest file (absolute).</summary>
    public string Path { get; }

    /// <summary>Every key with its resolved value (defaults filled in), sorted: what run.json records and the cache keys hash.</summary>
    public IReadOnlyDictionary<string, object> Values => _values;


    /// <summary>Every key the schema knows, with its help text and default, for error messages and docs.</summary>
    public static IEnumerable<string> Describe() => Schema.Describe();

    /// <summary>The manifest a run record resolved, as the run used it, with <paramref name="sets"/> on top (a replay's overrides).</summary>
    public static PipelineManifest FromRecord(RunRecord record, string recordPath, IReadOnlyList<string>? sets = null) =>
        Validate(Schema.Bind(record.Resolved, recordPath, sets), recordPath);

    public static PipelineManifest Load(string path, IReadOnlyList<string>? sets = null)
    {
        if (!File.Exists(path)) throw new StreamingException($"{path}: pipeline manifest not found");
        return Parse(File.ReadAllText(path), System.IO.Path.GetFullPath(path), sets);
    }

    /// <summary>Parses and validates a manifest; <paramref name="sets"/> are <c>key=value</c> overrides applied on top.</summary>
    public static PipelineManifest Parse(string yaml, string path, IReadOnlyList<string>? sets = null)
    {
        return Validate(Schema.Parse(yaml, path, sets), path);
    }

    /// <summary>The checks across keys, the same for a file and for a record.</summary>
    private static PipelineManifest Validate(ParsedConfig parsed, string path)
    {
        var (values, raw) = (parsed.Values, parsed.Raw);
        bool hasArch = values.ContainsKey("teacher.arch") && (raw.ContainsKey("teacher.arch") || !raw.ContainsKey("teacher.model")),
            hasModel = values.ContainsKey("teacher.model") && (raw.ContainsKey("teacher.model") || !raw.ContainsKey("teacher.arch"));
        if (hasArch == hasModel)
            throw new StreamingException($"{path}: the teacher needs exactly one of 'teacher.arch' (train it on D) and 'teacher.model' (import it)");
        foreach (var required in new[] { "data.train", "data.test", "scoring.k", "student.arch" })
            if (!values.ContainsKey(required)) throw new StreamingException($"{path}: missing key '{required}' ({Schema.Key(required).Help})");
        if ((int)values["data.labeled_per_class"] == 0 && !values.ContainsKey("data.unlabeled"))
            throw new StreamingException($"{parsed.Where("data.labeled_per_class")}: data.labeled_per_class 0 puts all of train in D, so U needs a separate collection: set data.unlabeled");
        // The thread count a run uses, not "all cores": run.json records it, and a replay elsewhere uses the same.
        if ((int)values[Knobs.Threads.Key] == 0) values[Knobs.Threads.Key] = Knobs.ResolveThreads(0);
        if ((string)values["weak.tags"] != "none" && !hasArch)
            throw new StreamingException($"{parsed.Where("weak.tags")}: weak.tags pre-trains the teacher on W's tags, so it needs 'teacher.arch', not an imported 'teacher.model'");
        if (hasArch) values.Remove("teacher.model");
        else foreach (var k in new[] { "teacher.arch", "teacher.images", "teacher.batch", "teacher.lr", "teacher.schedule", "teacher.ranks", "teacher.recipe" }) values.Remove(k);
        try
        {
            return new PipelineManifest(path, values); // binds the typed spec, whose scoring checks the rules between its knobs
        }
        catch (OptionException e)
        {
            throw new StreamingException(e.ForFile(parsed.Where(e.Spec.Key)));
        }
    }
}
