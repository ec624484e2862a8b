using Streaming.Core.Options;

namespace Streaming.Core.Selection;

/// <summary>The one place a selection's text becomes a <see cref="BalanceMode"/>, and back.</summary>
public static class BalanceModes
{
    /// <summary>Parses ranked, unbalanced-zipf or random; anything else is an <see cref="OptionException"/> naming <see cref="Knobs.Balance"/>.</summary>
    public static BalanceMode Parse(string text) => Knobs.Balance.Check(text.Trim().ToLowerInvariant()) switch
    {
        "ranked" => BalanceMode.Ranked,
        "unbalanced-zipf" => BalanceMode.UnbalancedZipf,
        _ => BalanceMode.Random,
    };

    public static string Name(BalanceMode mode) => mode switch
    {
        BalanceMode.Ranked => "ranked",
        BalanceMode.UnbalancedZipf => "unbalanced-zipf",
        _ => "random",
    };
}
