using System.CommandLine;
using System.Globalization;
using System.Runtime.CompilerServices;
using Streaming.Core.Options;

namespace Streaming.Cli.Shared;

/// <summary>
/// Command-line options made from the shared settings (<see cref="Knobs"/>): the flag, default, help and limits come
/// from the setting, so every verb that takes it agrees with the others and with the YAML files. A bad value is
/// refused at parse time, in the command line's words (<c>--top-p 0: must be at least 1</c>).
/// </summary>
internal static class KnobOption
{
    private static readonly ConditionalWeakTable<Option, OptionSpec> Specs = new();

    /// <summary>The setting an option was made from (null for the verb's own options).</summary>
    public static OptionSpec? SpecOf(Option option) => Specs.TryGetValue(option, out var spec) ? spec : null;

    /// <param name="flag">The flag, when this verb spells it otherwise.</param>
    /// <param name="description">The help, when this verb says more.</param>
    /// <param name="withDefault">Whether the option takes the setting's default (false: unset means "as the verb's other source says", e.g. a pipeline's).</param>
    public static Option<T> Create<T>(OptionSpec spec, string? flag = null, string? description = null, bool withDefault = true, params string[] aliases)
    {
        string name = flag ?? spec.Flag ?? throw new ArgumentException($"{spec.Key} has no command-line flag");
        var option = new Option<T>(name, aliases) { Description = description ?? spec.Help };
        if (withDefault && spec.BoxedDefault is not null)
        {
            var value = (T)Convert(spec.BoxedDefault, typeof(T));
            option.DefaultValueFactory = _ => value;
        }
        if (spec.Choices is { } choices && typeof(T) == typeof(string)) option.AcceptOnlyFromAmong([.. choices]);
        option.Validators.Add(result =>
        {
            if (result.Tokens.Count == 0) return;
            object? value;
            try
            {
                value = result.GetValueOrDefault<T>();
            }
            catch (InvalidOperationException)
            {
                return; // not a value of the type at all: the parser reports that itself
            }
            if (spec.Problem(value) is string problem)
                result.AddError($"{name} {System.Convert.ToString(value, CultureInfo.InvariantCulture)}: {problem}");
        });
        Specs.Add(option, spec);
        return option;
    }

    private static object Convert(object value, Type type)
    {
        var target = Nullable.GetUnderlyingType(type) ?? type;
        return target == typeof(ulong) ? System.Convert.ToUInt64(value, CultureInfo.InvariantCulture) : System.Convert.ChangeType(value, target, CultureInfo.InvariantCulture);
    }
}
