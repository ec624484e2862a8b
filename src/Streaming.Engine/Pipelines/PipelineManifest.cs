using Streaming.Core;
using Streaming.Core.Config;

namespace Streaming.Engine.Pipelines;

/// <summary>
/// A pipeline manifest (YAML): datasets, teacher, scoring, student, fine-tuning, seed and device. Parsed
/// against a fixed schema (<see cref="ConfigSchema"/>), so that a bad manifest fails before any work with the
/// key and the line: unknown keys, wrong types, missing files and out-of-range numbers (a negative K) are all
/// errors. Values are kept as a flat map of dotted keys (<c>scoring.k</c>), which is also what <c>--set</c> takes.
/// </summary>
public sealed class PipelineManifest
{
    private static readonly ConfigSchema Schema = new("a manifest",
    [
        new ConfigKey("name", ConfigKind.Text, "pipeline", "a name for the run"),
        new ConfigKey("seed", ConfigKind.Int, 0, "seed of the split, initialisations, data order and augmentation", Min: 0),
        new ConfigKey("device", ConfigKind.Text, "auto", "auto, cpu, cuda or cuda:N"),
        new ConfigKey("threads", ConfigKind.Int, 2, "libtorch threads (fixed, so a replay is bit-identical)", Min: 1),
        new ConfigKey("compute.isa", ConfigKind.Choice, "native", "kernel ISA: native (the CPU's best, fastest) or a level pinned so that the run is bit-identical on any CPU that has it (docs/cpu-kernels.md)", [.. Streaming.Models.Compute.KernelIsas.Names]),
        new ConfigKey("data.train", ConfigKind.File, null, "the labeled training source (idx, folder, tar, parquet), split into D and U"),
        new ConfigKey("data.test", ConfigKind.File, null, "the labeled evaluation source"),
        new ConfigKey("data.labeled_per_class", ConfigKind.Int, 100, "images a class in D; the rest of train joins U, its labels withheld (0: all of train is D, with data.unlabeled)", Min: 0),
        new ConfigKey("data.unlabeled", ConfigKind.File, null, "optional: a separate unlabeled collection (idx, folder, tar, parquet) that joins U whole, as the paper's YFCC100M / IG-1B"),
        new ConfigKey("data.distractors", ConfigKind.File, null, "optional: a folder of photos; random crops of them (images of no class) are added to U"),
        new ConfigKey("data.distractor_count", ConfigKind.Int, 10_000, "with data.distractors: how many crops to add to U", Min: 1),
        new ConfigKey("teacher.arch", ConfigKind.Text, null, "the teacher's architecture, trained on D"),
        new ConfigKey("teacher.model", ConfigKind.File, null, "an imported teacher instead (.safetensors, .pt or .onnx)"),
        new ConfigKey("teacher.images", ConfigKind.Long, 55_000L, "training budget in images", Min: 1),
        new ConfigKey("teacher.batch", ConfigKind.Int, 128, "batch size", Min: 1),
        new ConfigKey("teacher.lr", ConfigKind.Number, 0.1, "base learning rate at batch 256", Min: 0),
        new ConfigKey("teacher.schedule", ConfigKind.Choice, "cosine", "learning-rate schedule", ["cosine", "pretrain", "finetune", "constant"]),
        new ConfigKey("scoring.top_p", ConfigKind.Int, 10, "P': classes kept per image by the scorer", Min: 1),
        new ConfigKey("scoring.k", ConfigKind.Int, null, "K: images kept a class", Min: 1),
        new ConfigKey("scoring.p", ConfigKind.Int, 1, "P: classes per image that count", Min: 1),
        new ConfigKey("scoring.balance", ConfigKind.Choice, "ranked", "selection", ["ranked", "unbalanced-zipf", "random"]),
        new ConfigKey("scoring.batch", ConfigKind.Int, 256, "inference batch", Min: 1),
        new ConfigKey("student.arch", ConfigKind.Text, null, "the student's architecture"),
        new ConfigKey("student.images", ConfigKind.Long, 100_000L, "pre-training budget on D-hat in images", Min: 1),
        new ConfigKey("student.batch", ConfigKind.Int, 128, "batch size", Min: 1),
        new ConfigKey("student.lr", ConfigKind.Number, 0.1, "base learning rate at batch 256", Min: 0),
        new ConfigKey("student.schedule", ConfigKind.Choice, "pretrain", "learning-rate schedule", ["cosine", "pretrain", "finetune", "constant"]),
        new ConfigKey("student.targets", ConfigKind.Choice, "hard", "pseudo-labels: hard (the paper: the class each image was selected for) or soft (the teacher's top-P' probabilities of each image, renormalized)", ["hard", "soft"]),
        new ConfigKey("finetune.images", ConfigKind.Long, 30_000L, "fine-tuning budget on D in images", Min: 1),
        new ConfigKey("finetune.batch", ConfigKind.Int, 128, "batch size", Min: 1),
        new ConfigKey("finetune.lr", ConfigKind.Number, 0.02, "base learning rate at batch 256", Min: 0),
        new ConfigKey("finetune.schedule", ConfigKind.Choice, "finetune", "learning-rate schedule", ["cosine", "pretrain", "finetune", "constant"]),
        new ConfigKey("baseline.images", ConfigKind.Long, 55_000L, "budget of the supervised baseline (the student's architecture on D only)", Min: 1),
        new ConfigKey("baseline.batch", ConfigKind.Int, 128, "batch size", Min: 1),
        new ConfigKey("baseline.lr", ConfigKind.Number, 0.1, "base learning rate at batch 256", Min: 0),
        new ConfigKey("baseline.schedule", ConfigKind.Choice, "cosine", "learning-rate schedule", ["cosine", "pretrain", "finetune", "constant"]),
    ], "scoring.k=2000", alternatives: [["teacher.arch", "teacher.model"]]);

    private readonly SortedDictionary<string, object> _values;

    private PipelineManifest(string path, SortedDictionary<string, object> values)
    {
        Path = path;
        _values = values;
    }

    /// <summary>The manifest file (absolute).</summary>
    public string Path { get; }

    /// <summary>Every key with its resolved value (defaults filled in), sorted: what run.json records and the cache keys hash.</summary>
    public IReadOnlyDictionary<string, object> Values => _values;

    public string Text(string key) => (string)_values[key];
    public string? OptionalText(string key) => _values.TryGetValue(key, out var v) ? (string)v : null;
    public int Int(string key) => (int)_values[key];
    public long Long(string key) => (long)_values[key];
    public double Number(string key) => (double)_values[key];

    /// <summary>Every key the schema knows, with its help text and default, for error messages and docs.</summary>
    public static IEnumerable<string> Describe() => Schema.Describe();

    public static PipelineManifest Load(string path, IReadOnlyList<string>? sets = null)
    {
        if (!File.Exists(path)) throw new StreamingException($"{path}: pipeline manifest not found");
        return Parse(File.ReadAllText(path), System.IO.Path.GetFullPath(path), sets);
    }

    /// <summary>Parses and validates a manifest; <paramref name="sets"/> are <c>key=value</c> overrides applied on top.</summary>
    public static PipelineManifest Parse(string yaml, string path, IReadOnlyList<string>? sets = null)
    {
        var parsed = Schema.Parse(yaml, path, sets);
        var (values, raw) = (parsed.Values, parsed.Raw);
        bool hasArch = raw.ContainsKey("teacher.arch"), hasModel = raw.ContainsKey("teacher.model");
        if (hasArch == hasModel)
            throw new StreamingException($"{path}: the teacher needs exactly one of 'teacher.arch' (train it on D) and 'teacher.model' (import it)");
        foreach (var required in new[] { "data.train", "data.test", "scoring.k", "student.arch" })
            if (!values.ContainsKey(required)) throw new StreamingException($"{path}: missing key '{required}' ({Schema.Key(required).Help})");
        if ((int)values["data.labeled_per_class"] == 0 && !values.ContainsKey("data.unlabeled"))
            throw new StreamingException($"{parsed.Where("data.labeled_per_class")}: data.labeled_per_class 0 puts all of train in D, so U needs a separate collection: set data.unlabeled");
        if ((int)values["scoring.p"] > (int)values["scoring.top_p"])
            throw new StreamingException($"{parsed.Where("scoring.p")}: scoring.p ({values["scoring.p"]}) cannot exceed scoring.top_p ({values["scoring.top_p"]}), the classes the scores keep");
        if (hasArch) values.Remove("teacher.model");
        else foreach (var k in new[] { "teacher.arch", "teacher.images", "teacher.batch", "teacher.lr", "teacher.schedule" }) values.Remove(k);
        return new PipelineManifest(path, values);
    }
}
