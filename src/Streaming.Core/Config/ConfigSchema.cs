using System.Globalization;
using Streaming.Core;
using Streaming.Core.Options;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Streaming.Core.Config;

/// <summary>One key of a YAML file: its dotted name, type, default, help, and for choices the allowed values.</summary>
/// <param name="Notes">For a choice: a note shown when a known-but-unsupported value is given.</param>
public sealed record ConfigKey(string Name, OptionKind Kind, object? Default, string Help, IReadOnlyList<string>? Choices = null,
    double Min = double.NegativeInfinity, IReadOnlyDictionary<string, string>? Notes = null)
{
    public double Max { get; init; } = double.PositiveInfinity;
    /// <summary>Older names that still mean this key.</summary>
    public IReadOnlyList<string> Aliases { get; init; } = [];

    /// <summary>The key of a shared setting (<see cref="Knobs"/>), with its default, range and help; a file may give it another default.</summary>
    public static ConfigKey From(OptionSpec spec, object? defaultValue = null, string? help = null) =>
        new(spec.Key, spec.Kind, defaultValue ?? spec.BoxedDefault, help ?? spec.Help, spec.Choices, spec.Min) { Max = spec.Max, Aliases = spec.Aliases };
}

/// <summary>A YAML file's keys and values, as parsed against a <see cref="ConfigSchema"/>.</summary>
public sealed record ParsedConfig(SortedDictionary<string, object> Values, IReadOnlyDictionary<string, (string Value, int Line)> Raw, string Path)
{
    /// <summary>Where a key was given: <c>file:line</c>, or the file when it came from a flag or a default.</summary>
    public string Where(string key) => Raw.TryGetValue(key, out var v) && v.Line > 0 ? $"{Path}:{v.Line}" : Path;
}

/// <summary>
/// A fixed schema for a YAML file of sections and keys (at most one level of sections), parsed into a flat map
/// of dotted keys (<c>scoring.k</c>), which is also what <c>--set key=value</c> takes. A bad file fails before
/// any work, naming the file, the line and the key: unknown keys (with the nearest known one), wrong types,
/// missing files, out-of-range numbers, values given twice.
/// </summary>
public sealed class ConfigSchema
{
    private readonly ConfigKey[] _keys;
    private readonly string[] _sections;
    private readonly string _setExample;
    private readonly string[][] _alternatives;

    /// <param name="what">What the file is, for messages ("a manifest", "a daemon config").</param>
    /// <param name="setExample">A <c>key=value</c> shown when an override is malformed.</param>
    /// <param name="alternatives">Groups of keys that stand for each other (a teacher's <c>arch</c> or <c>model</c>):
    /// an override of one drops the others that the file gives, so that one <c>--set</c> switches between them.</param>
    public ConfigSchema(string what, IEnumerable<ConfigKey> keys, string setExample, IEnumerable<string[]>? alternatives = null)
    {
        What = what;
        _setExample = setExample;
        _alternatives = (alternatives ?? []).ToArray();
        _keys = keys.ToArray();
        _sections = _keys.Where(k => k.Name.Contains('.')).Select(k => k.Name[..k.Name.IndexOf('.')]).Distinct().ToArray();
    }

    public string What { get; }
    public IReadOnlyList<ConfigKey> Keys => _keys;

    public ConfigKey Key(string name) => _keys.First(k => k.Name == name);

    /// <summary>Every key with its type, default and help, for error messages and docs.</summary>
    public IEnumerable<string> Describe() =>
        _keys.Select(k => $"{k.Name} ({KindName(k)}{(k.Default is null ? "" : ", default " + Format(k.Default))}{(double.IsFinite(k.Max) ? ", at most " + k.Max.ToString(CultureInfo.InvariantCulture) : "")}): {k.Help}");

    /// <summary>Parses <paramref name="yaml"/> and applies <paramref name="sets"/> (<c>key=value</c>) on top; fills defaults.</summary>
    public ParsedConfig Parse(string yaml, string path, IReadOnlyList<string>? sets = null, string setFlag = "--set")
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
                throw new StreamingException($"{path}:{stream.Documents[0].RootNode.Start.Line}: {What} is a mapping of keys ({string.Join(", ", _keys.Select(k => k.Name.Split('.')[0]).Distinct().Take(4))}, ...)");
            Flatten(root, "", raw, path);
        }
        foreach (var set in sets ?? [])
        {
            int eq = set.IndexOf('=');
            if (eq <= 0) throw new StreamingException($"{setFlag} {set}: use key=value, for example {_setExample}");
            string name = Canonical(set[..eq].Trim());
            foreach (var group in _alternatives.Where(g => g.Contains(name)))
                foreach (var other in group)
                    if (other != name && raw.TryGetValue(other, out var given) && given.Line > 0) raw.Remove(other);
            raw[name] = (set[(eq + 1)..].Trim(), 0);
        }

        string baseDir = System.IO.Path.GetDirectoryName(path) ?? ".";
        var values = new SortedDictionary<string, object>(StringComparer.Ordinal);
        foreach (var (name, (text, line)) in raw)
        {
            string where = line > 0 ? $"{path}:{line}" : $"{setFlag} {name}";
            var key = _keys.FirstOrDefault(k => k.Name == name)
                ?? throw new StreamingException($"{where}: unknown key '{name}'{Suggest(name)}");
            // A relative path in the file is relative to the file; one given with --set, to where the command runs.
            values[name] = Convert(key, text, where, line > 0 ? baseDir : Directory.GetCurrentDirectory());
        }
        foreach (var key in _keys)
            if (!values.ContainsKey(key.Name) && key.Default is not null) values[key.Name] = key.Default;
        return new ParsedConfig(values, raw, path);
    }

    /// <summary>A key's current name, for one given under an older name.</summary>
    private string Canonical(string name) => _keys.FirstOrDefault(k => k.Aliases.Contains(name))?.Name ?? name;

    /// <summary>
    /// Binds values that are already typed (a run record's resolved manifest, read as JSON) with the same checks as a
    /// file's, then applies <paramref name="sets"/> (<c>key=value</c>) on top and fills defaults: no value goes back to text.
    /// </summary>
    public ParsedConfig Bind(IReadOnlyDictionary<string, System.Text.Json.JsonElement> values, string path, IReadOnlyList<string>? sets = null)
    {
        var typed = new SortedDictionary<string, object>(StringComparer.Ordinal);
        foreach (var (given, element) in values)
        {
            string name = Canonical(given), where = $"{path}: resolved '{given}'";
            var key = _keys.FirstOrDefault(k => k.Name == name) ?? throw new StreamingException($"{where}: unknown key{Suggest(name)}");
            object value;
            try
            {
                value = key.Kind switch
                {
                    OptionKind.Int => element.GetInt32(),
                    OptionKind.Long => element.GetInt64(),
                    OptionKind.Number => element.GetDouble(),
                    OptionKind.Bool => element.GetBoolean(),
                    _ => element.GetString() ?? throw new InvalidOperationException("null"),
                };
            }
            catch (Exception e) when (e is InvalidOperationException or FormatException)
            {
                throw new StreamingException($"{where}: must be {KindName(key)}, not {element.GetRawText()}");
            }
            typed[name] = Check(key, value, where);
        }
        var parsed = Parse("", path, sets);
        foreach (var (name, value) in parsed.Raw.Keys.ToDictionary(k => k, k => parsed.Values[k])) typed[name] = value;
        foreach (var key in _keys)
            if (!typed.ContainsKey(key.Name) && key.Default is not null) typed[key.Name] = key.Default;
        return new ParsedConfig(typed, parsed.Raw, path);
    }

    /// <summary>A typed value's checks: range, choice, an existing file.</summary>
    private static object Check(ConfigKey key, object value, string where)
    {
        var inv = CultureInfo.InvariantCulture;
        switch (value)
        {
            case string text when key.Kind == OptionKind.Choice && !key.Choices!.Contains(text):
                throw new StreamingException($"{where}: '{key.Name}' must be one of {string.Join(", ", key.Choices!)}, not '{text}'");
            case string text when key.Kind == OptionKind.File && !File.Exists(text) && !Directory.Exists(text):
                throw new StreamingException($"{where}: '{key.Name}': {text} does not exist");
            case int or long or double:
                double number = System.Convert.ToDouble(value, inv);
                if (number < key.Min) throw new StreamingException($"{where}: '{key.Name}' must be at least {key.Min.ToString(inv)}, not {number.ToString(inv)}");
                if (number > key.Max) throw new StreamingException($"{where}: '{key.Name}' must be at most {key.Max.ToString(inv)}, not {number.ToString(inv)}");
                break;
        }
        return value;
    }

    private void Flatten(YamlMappingNode node, string prefix, Dictionary<string, (string, int)> into, string path)
    {
        foreach (var (k, v) in node.Children)
        {
            string name = Canonical(prefix + ((k as YamlScalarNode)?.Value ?? throw new StreamingException($"{path}:{k.Start.Line}: keys must be plain words")));
            int line = (int)k.Start.Line;
            switch (v)
            {
                case YamlMappingNode child when prefix.Length == 0 && _sections.Contains(name) && !_keys.Any(s => s.Name == name):
                    Flatten(child, name + ".", into, path);
                    break;
                case YamlMappingNode:
                    throw new StreamingException(_sections.Contains(name) || _keys.Any(s => s.Name == name)
                        ? $"{path}:{line}: '{name}' takes a single value, not a mapping"
                        : $"{path}:{line}: unknown key '{name}'{Suggest(name)}");
                case YamlSequenceNode:
                    throw new StreamingException($"{path}:{line}: '{name}' takes a single value, not a list");
                case YamlScalarNode scalar:
                    if (prefix.Length == 0 && _sections.Contains(name))
                        throw new StreamingException($"{path}:{line}: '{name}' is a section: give it keys ({string.Join(", ", _keys.Where(s => s.Name.StartsWith(name + ".", StringComparison.Ordinal)).Select(s => s.Name[(name.Length + 1)..]))})");
                    if (into.ContainsKey(name)) throw new StreamingException($"{path}:{line}: '{name}' is given twice");
                    into[name] = (scalar.Value ?? "", line);
                    break;
            }
        }
    }

    private static object Convert(ConfigKey key, string text, string where, string baseDir)
    {
        var inv = CultureInfo.InvariantCulture;
        string Wrong() => $"{where}: '{key.Name}' must be {KindName(key)}, not '{text}'";
        double number;
        object value;
        switch (key.Kind)
        {
            case OptionKind.Text:
                if (text.Length == 0) throw new StreamingException($"{where}: '{key.Name}' is empty");
                return text;
            case OptionKind.Choice:
                if (!key.Choices!.Contains(text))
                    throw new StreamingException($"{where}: '{key.Name}' must be one of {string.Join(", ", key.Choices!)}, not '{text}'"
                        + (key.Notes is not null && key.Notes.TryGetValue(text, out var note) ? $" ({note})" : ""));
                return text;
            case OptionKind.Bool:
                return text.ToLowerInvariant() switch
                {
                    "true" or "yes" or "on" => true,
                    "false" or "no" or "off" => false,
                    _ => throw new StreamingException(Wrong()),
                };
            case OptionKind.File:
            case OptionKind.Path:
                if (text.Length == 0) throw new StreamingException($"{where}: '{key.Name}' is empty");
                string full = System.IO.Path.IsPathRooted(text) ? text : System.IO.Path.GetFullPath(System.IO.Path.Combine(baseDir, text));
                if (key.Kind == OptionKind.File && !File.Exists(full) && !Directory.Exists(full))
                    throw new StreamingException($"{where}: '{key.Name}': {full} does not exist");
                return full;
            case OptionKind.Int:
                if (!int.TryParse(text, NumberStyles.Integer, inv, out int i)) throw new StreamingException(Wrong());
                (number, value) = (i, i);
                break;
            case OptionKind.Long:
                if (!long.TryParse(text.Replace("_", "", StringComparison.Ordinal), NumberStyles.Integer, inv, out long l)) throw new StreamingException(Wrong());
                (number, value) = (l, l);
                break;
            default:
                if (!double.TryParse(text, NumberStyles.Float, inv, out double d) || !double.IsFinite(d)) throw new StreamingException(Wrong());
                (number, value) = (d, d);
                break;
        }
        if (number < key.Min) throw new StreamingException($"{where}: '{key.Name}' must be at least {key.Min.ToString(inv)}, not {text}");
        if (number > key.Max) throw new StreamingException($"{where}: '{key.Name}' must be at most {key.Max.ToString(inv)}, not {text}");
        return value;
    }

    private static string KindName(ConfigKey k) => k.Kind switch
    {
        OptionKind.Int or OptionKind.Long => "a whole number",
        OptionKind.Number => "a number",
        OptionKind.File => "an existing file or folder",
        OptionKind.Path => "a path",
        OptionKind.Bool => "true or false",
        OptionKind.Choice => "one of " + string.Join(", ", k.Choices!),
        _ => "text",
    };

    private static string Format(object value) => value switch
    {
        double d => d.ToString(CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        _ => System.Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
    };

    private string Suggest(string name)
    {
        var close = _keys.Select(k => k.Name).OrderBy(k => Distance(k, name)).First();
        return Distance(close, name) <= 3 ? $" (did you mean '{close}'?)" : $"; known keys: {string.Join(", ", _keys.Select(k => k.Name))}";
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
