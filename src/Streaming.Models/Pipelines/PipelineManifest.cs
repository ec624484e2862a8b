using System.Globalization;
using Streaming.Core;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Streaming.Models.Pipelines;

/// <summary>
/// A pipeline manifest (YAML): datasets, teacher, scoring, student, fine-tuning, seed and device. Parsed
/// against a fixed schema, so that a bad manifest fails before any work with the key and the line:
/// unknown keys, wrong types, missing files and out-of-range numbers (a negative K) are all errors.
/// Values are kept as a flat map of dotted keys (<c>scoring.k</c>), which is also what <c>--set</c> takes.
/// </summary>
public sealed class PipelineManifest
{
    private enum Kind { Text, Int, Long, Number, File, Choice }

    private sealed record Key(string Name, Kind Kind, object? Default, string Help, string[]? Choices = null, double Min = double.NegativeInfinity);

    private static readonly Key[] Schema =
    [
        new("name", Kind.Text, "pipeline", "a name for the run"),
        new("seed", Kind.Int, 0, "seed of the split, initialisations, data order and augmentation", Min: 0),
        new("device", Kind.Text, "auto", "auto, cpu, cuda or cuda:N"),
        new("threads", Kind.Int, 2, "libtorch threads (fixed, so a replay is bit-identical)", Min: 1),
        new("data.train", Kind.File, null, "the labeled training source (idx, folder, tar, parquet), split into D and U"),
        new("data.test", Kind.File, null, "the labeled evaluation source"),
        new("data.labeled_per_class", Kind.Int, 100, "images a class in D; the rest of train is U, its labels withheld", Min: 1),
        new("teacher.arch", Kind.Text, null, "the teacher's architecture, trained on D"),
        new("teacher.model", Kind.File, null, "an imported teacher instead (.safetensors, .pt or .onnx)"),
        new("teacher.images", Kind.Long, 55_000L, "training budget in images", Min: 1),
        new("teacher.batch", Kind.Int, 128, "batch size", Min: 1),
        new("teacher.lr", Kind.Number, 0.1, "base learning rate at batch 256", Min: 0),
        new("teacher.schedule", Kind.Choice, "cosine", "learning-rate schedule", ["cosine", "pretrain", "finetune", "constant"]),
        new("scoring.top_p", Kind.Int, 10, "P': classes kept per image by the scorer", Min: 1),
        new("scoring.k", Kind.Int, null, "K: images kept a class", Min: 1),
        new("scoring.p", Kind.Int, 1, "P: classes per image that count", Min: 1),
        new("scoring.balance", Kind.Choice, "ranked", "selection", ["ranked", "unbalanced-zipf", "random"]),
        new("scoring.batch", Kind.Int, 256, "inference batch", Min: 1),
        new("student.arch", Kind.Text, null, "the student's architecture"),
        new("student.images", Kind.Long, 100_000L, "pre-training budget on D-hat in images", Min: 1),
        new("student.batch", Kind.Int, 128, "batch size", Min: 1),
        new("student.lr", Kind.Number, 0.1, "base learning rate at batch 256", Min: 0),
        new("student.schedule", Kind.Choice, "pretrain", "learning-rate schedule", ["cosine", "pretrain", "finetune", "constant"]),
        new("student.targets", Kind.Choice, "hard", "pseudo-labels: hard (the paper)", ["hard"]),
        new("finetune.images", Kind.Long, 30_000L, "fine-tuning budget on D in images", Min: 1),
        new("finetune.batch", Kind.Int, 128, "batch size", Min: 1),
        new("finetune.lr", Kind.Number, 0.02, "base learning rate at batch 256", Min: 0),
        new("finetune.schedule", Kind.Choice, "finetune", "learning-rate schedule", ["cosine", "pretrain", "finetune", "constant"]),
        new("baseline.images", Kind.Long, 55_000L, "budget of the supervised baseline (the student's architecture on D only)", Min: 1),
        new("baseline.batch", Kind.Int, 128, "batch size", Min: 1),
        new("baseline.lr", Kind.Number, 0.1, "base learning rate at batch 256", Min: 0),
        new("baseline.schedule", Kind.Choice, "cosine", "learning-rate schedule", ["cosine", "pretrain", "finetune", "constant"]),
    ];

    private static readonly string[] Sections = Schema.Where(k => k.Name.Contains('.')).Select(k => k.Name[..k.Name.IndexOf('.')]).Distinct().ToArray();

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
    public static IEnumerable<string> Describe() =>
        Schema.Select(k => $"{k.Name} ({KindName(k)}{(k.Default is null ? "" : ", default " + Format(k.Default))}): {k.Help}");

    public static PipelineManifest Load(string path, IReadOnlyList<string>? sets = null)
    {
        if (!File.Exists(path)) throw new StreamingException($"{path}: pipeline manifest not found");
        return Parse(File.ReadAllText(path), System.IO.Path.GetFullPath(path), sets);
    }

    /// <summary>Parses and validates a manifest; <paramref name="sets"/> are <c>key=value</c> overrides applied on top.</summary>
    public static PipelineManifest Parse(string yaml, string path, IReadOnlyList<string>? sets = null)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            throw new StreamingException($"{path}:{e.Start.Line}: not valid YAML ({e.Message})");
        }
        var raw = new Dictionary<string, (string Value, int Line)>(StringComparer.Ordinal);
        if (stream.Documents.Count > 0 && stream.Documents[0].RootNode is not YamlScalarNode { Value: null or "" })
        {
            if (stream.Documents[0].RootNode is not YamlMappingNode root)
                throw new StreamingException($"{path}:{stream.Documents[0].RootNode.Start.Line}: a manifest is a mapping of keys (name:, data:, teacher:, ...)");
            Flatten(root, "", raw, path);
        }
        foreach (var set in sets ?? [])
        {
            int eq = set.IndexOf('=');
            if (eq <= 0) throw new StreamingException($"--set {set}: use key=value, for example scoring.k=2000");
            raw[set[..eq].Trim()] = (set[(eq + 1)..].Trim(), 0);
        }

        string baseDir = System.IO.Path.GetDirectoryName(path) ?? ".";
        var values = new SortedDictionary<string, object>(StringComparer.Ordinal);
        foreach (var (name, (text, line)) in raw)
        {
            string where = line > 0 ? $"{path}:{line}" : $"--set {name}";
            var key = Schema.FirstOrDefault(k => k.Name == name)
                ?? throw new StreamingException($"{where}: unknown key '{name}'{Suggest(name)}");
            values[name] = Convert(key, text, where, baseDir);
        }
        foreach (var key in Schema)
            if (!values.ContainsKey(key.Name) && key.Default is not null) values[key.Name] = key.Default;

        bool hasArch = raw.ContainsKey("teacher.arch"), hasModel = raw.ContainsKey("teacher.model");
        if (hasArch == hasModel)
            throw new StreamingException($"{path}: the teacher needs exactly one of 'teacher.arch' (train it on D) and 'teacher.model' (import it)");
        foreach (var required in new[] { "data.train", "data.test", "scoring.k", "student.arch" })
            if (!values.ContainsKey(required)) throw new StreamingException($"{path}: missing key '{required}' ({Schema.First(k => k.Name == required).Help})");
        if ((int)values["scoring.p"] > (int)values["scoring.top_p"])
            throw new StreamingException($"{Where(raw, "scoring.p", path)}: scoring.p ({values["scoring.p"]}) cannot exceed scoring.top_p ({values["scoring.top_p"]}), the classes the scores keep");
        if (hasArch) values.Remove("teacher.model");
        else foreach (var k in new[] { "teacher.arch", "teacher.images", "teacher.batch", "teacher.lr", "teacher.schedule" }) values.Remove(k);
        return new PipelineManifest(path, values);
    }

    private static string Where(Dictionary<string, (string Value, int Line)> raw, string key, string path) =>
        raw.TryGetValue(key, out var v) && v.Line > 0 ? $"{path}:{v.Line}" : path;

    private static void Flatten(YamlMappingNode node, string prefix, Dictionary<string, (string, int)> into, string path)
    {
        foreach (var (k, v) in node.Children)
        {
            string name = prefix + ((k as YamlScalarNode)?.Value ?? throw new StreamingException($"{path}:{k.Start.Line}: keys must be plain words"));
            int line = (int)k.Start.Line;
            switch (v)
            {
                case YamlMappingNode child when prefix.Length == 0 && Sections.Contains(name):
                    Flatten(child, name + ".", into, path);
                    break;
                case YamlMappingNode:
                    throw new StreamingException(Sections.Contains(name) || Schema.Any(s => s.Name == name)
                        ? $"{path}:{line}: '{name}' takes a single value, not a mapping"
                        : $"{path}:{line}: unknown key '{name}'{Suggest(name)}");
                case YamlSequenceNode:
                    throw new StreamingException($"{path}:{line}: '{name}' takes a single value, not a list");
                case YamlScalarNode scalar:
                    if (prefix.Length == 0 && Sections.Contains(name))
                        throw new StreamingException($"{path}:{line}: '{name}' is a section: give it keys ({string.Join(", ", Schema.Where(s => s.Name.StartsWith(name + ".", StringComparison.Ordinal)).Select(s => s.Name[(name.Length + 1)..]))})");
                    if (into.ContainsKey(name)) throw new StreamingException($"{path}:{line}: '{name}' is given twice");
                    into[name] = (scalar.Value ?? "", line);
                    break;
            }
        }
    }

    private static object Convert(Key key, string text, string where, string baseDir)
    {
        var inv = CultureInfo.InvariantCulture;
        string Wrong() => $"{where}: '{key.Name}' must be {KindName(key)}, not '{text}'";
        double number;
        object value;
        switch (key.Kind)
        {
            case Kind.Text:
                if (text.Length == 0) throw new StreamingException($"{where}: '{key.Name}' is empty");
                return text;
            case Kind.Choice:
                if (!key.Choices!.Contains(text))
                    throw new StreamingException($"{where}: '{key.Name}' must be one of {string.Join(", ", key.Choices!)}, not '{text}'"
                        + (key.Name == "student.targets" && text == "soft" ? " (soft targets from the teacher's top-P probabilities are not implemented yet)" : ""));
                return text;
            case Kind.File:
                string full = System.IO.Path.IsPathRooted(text) ? text : System.IO.Path.GetFullPath(System.IO.Path.Combine(baseDir, text));
                if (!File.Exists(full) && !Directory.Exists(full)) throw new StreamingException($"{where}: '{key.Name}': {full} does not exist");
                return full;
            case Kind.Int:
                if (!int.TryParse(text, NumberStyles.Integer, inv, out int i)) throw new StreamingException(Wrong());
                (number, value) = (i, i);
                break;
            case Kind.Long:
                if (!long.TryParse(text.Replace("_", "", StringComparison.Ordinal), NumberStyles.Integer, inv, out long l)) throw new StreamingException(Wrong());
                (number, value) = (l, l);
                break;
            default:
                if (!double.TryParse(text, NumberStyles.Float, inv, out double d) || !double.IsFinite(d)) throw new StreamingException(Wrong());
                (number, value) = (d, d);
                break;
        }
        if (number < key.Min) throw new StreamingException($"{where}: '{key.Name}' must be at least {key.Min.ToString(inv)}, not {text}");
        return value;
    }

    private static string KindName(Key k) => k.Kind switch
    {
        Kind.Int or Kind.Long => "a whole number",
        Kind.Number => "a number",
        Kind.File => "an existing file or folder",
        Kind.Choice => "one of " + string.Join(", ", k.Choices!),
        _ => "text",
    };

    private static string Format(object value) => value switch
    {
        double d => d.ToString(CultureInfo.InvariantCulture),
        _ => System.Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
    };

    private static string Suggest(string name)
    {
        var close = Schema.Select(k => k.Name).OrderBy(k => Distance(k, name)).First();
        return Distance(close, name) <= 3 ? $" (did you mean '{close}'?)" : $"; known keys: {string.Join(", ", Schema.Select(k => k.Name))}";
    }

    private static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
        return d[a.Length, b.Length];
    }
}
