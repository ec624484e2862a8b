using System.Globalization;

namespace Streaming.Core.Options;

public enum OptionKind { Text, Int, Long, Number, File, Path, Bool, Choice }

/// <summary>
/// One setting, declared once: its key in YAML files (<c>scoring.top_p</c>), its flag on the command line
/// (<c>--top-p</c>), its type, its default, its range and what it does. The command line, the daemon's config, the
/// pipeline manifest and profile all build their options from these, so they agree on defaults and limits, and each
/// reports a bad value in its own words: the flag on the command line, the key and the line in a file.
/// </summary>
public record OptionSpec(string Key, string? Flag, OptionKind Kind, object? BoxedDefault, string Help)
{
    public double Min { get; init; } = double.NegativeInfinity;
    public double Max { get; init; } = double.PositiveInfinity;
    public IReadOnlyList<string>? Choices { get; init; }
    /// <summary>Older keys that still mean this one in files (the key itself is what errors and records use).</summary>
    public IReadOnlyList<string> Aliases { get; init; } = [];

    /// <summary>What is wrong with a value (null: nothing): out of range, or not one of the choices.</summary>
    public string? Problem(object? value)
    {
        var inv = CultureInfo.InvariantCulture;
        switch (value)
        {
            case null:
                return null;
            case string s when Kind == OptionKind.Choice && Choices is not null && !Choices.Contains(s):
                return $"must be one of {string.Join(", ", Choices)}";
            case int or long or double or float:
                double x = Convert.ToDouble(value, inv);
                if (x < Min) return $"must be at least {Min.ToString(inv)}";
                if (x > Max) return $"must be at most {Max.ToString(inv)}";
                return null;
            default:
                return null;
        }
    }

    /// <summary>The value, or an <see cref="OptionException"/> naming this setting.</summary>
    public T Check<T>(T value) => Problem(value) is string problem ? throw new OptionException(this, value, problem) : value;

    /// <summary>How a person reads the default in help and docs.</summary>
    public string DefaultText => BoxedDefault switch
    {
        null => "none",
        bool b => b ? "true" : "false",
        double d => d.ToString(CultureInfo.InvariantCulture),
        _ => Convert.ToString(BoxedDefault, CultureInfo.InvariantCulture) ?? "",
    };
}

/// <summary>A setting whose value has the type <typeparamref name="T"/>: its default is typed, so nobody casts it.</summary>
public sealed record Knob<T>(string Key, string? Flag, OptionKind Kind, T Default, string Help) : OptionSpec(Key, Flag, Kind, Default, Help)
{
    /// <summary>The value, or an <see cref="OptionException"/> naming this setting.</summary>
    public T Check(T value) => Check<T>(value);
}

/// <summary>A setting's value is wrong. Front ends say so in their own words: <see cref="ForCommandLine"/>, or the key and the line of a file.</summary>
public sealed class OptionException(OptionSpec spec, object? value, string problem)
    : StreamingException($"'{spec.Key}' {problem}, not {Convert.ToString(value, CultureInfo.InvariantCulture)}")
{
    public OptionSpec Spec { get; } = spec;
    public object? Value { get; } = value;
    public string Problem { get; } = problem;

    /// <summary>As the command line says it: the flag, the value given, what is wrong.</summary>
    public string ForCommandLine => $"{Spec.Flag ?? Spec.Key} {Convert.ToString(Value, CultureInfo.InvariantCulture)}: {Problem}";

    /// <summary>As a file says it: where, the key, what is wrong.</summary>
    public string ForFile(string where) => $"{where}: '{Spec.Key}' {Problem}, not {Convert.ToString(Value, CultureInfo.InvariantCulture)}";
}
