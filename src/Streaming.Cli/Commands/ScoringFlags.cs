using System.CommandLine;
using Streaming.Cli.Shared;
using Streaming.Core.Compute;
using Streaming.Core.Options;
using Streaming.Core.Scoring;
using Streaming.Core.Selection;

namespace Streaming.Cli.Commands;

/// <summary>The scoring's flags (<see cref="Knobs"/>: --top-p, --batch, --decode-workers, -k, -p, --balance, --seed and the compute flags), bound into one <see cref="ScoringSpec"/>.</summary>
internal sealed class ScoringFlags
{
    public Option<int> TopP { get; } = KnobOption.Create<int>(Knobs.TopP);
    public Option<int> Batch { get; } = KnobOption.Create<int>(Knobs.ScoringBatch, aliases: "-b");
    public Option<int> DecodeWorkers { get; } = KnobOption.Create<int>(Knobs.DecodeWorkers);
    public Option<int?> K { get; } = KnobOption.Create<int?>(Knobs.K, description: "Also select D-hat: K images a class");
    public Option<int> P { get; } = KnobOption.Create<int>(Knobs.P, description: "With -k: " + Knobs.P.Help);
    public Option<string> Balance { get; } = KnobOption.Create<string>(Knobs.Balance, description: "With -k: " + Knobs.Balance.Help);
    public Option<long> Seed { get; } = KnobOption.Create<long>(Knobs.SelectionSeed);
    public ComputeFlags Compute { get; } = new();

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { TopP, Batch, DecodeWorkers, K, P, Balance, Seed }) command.Options.Add(option);
        Compute.AddTo(command);
    }

    /// <summary>The spec the flags give, validated (P at most P' with -k): a bad combination is one line naming the flag.</summary>
    public ScoringSpec Bind(ParseResult parse) => new ScoringSpec
    {
        TopP = parse.GetValue(TopP),
        Batch = parse.GetValue(Batch),
        DecodeWorkers = parse.GetValue(DecodeWorkers),
        K = parse.GetValue(K),
        P = parse.GetValue(P),
        Balance = BalanceModes.Parse(parse.GetValue(Balance)!),
        Seed = (ulong)parse.GetValue(Seed),
        Compute = Compute.Bind(parse),
    }.Validated();
}
