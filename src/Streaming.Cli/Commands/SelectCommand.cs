using System.CommandLine;
using System.Globalization;
using Streaming.Core.Selection;

namespace Streaming.Cli.Commands;

/// <summary><c>streaming select</c>: D-hat from stored score shards, without inference.</summary>
public static class SelectCommand
{
    public static Command Create()
    {
        var scores = new Option<string>("--scores", "-s") { Description = "Output folder of 'streaming score' (holds scoring.json)", Required = true };
        var k = new Option<int>("-k") { Description = "Images a class (K)", Required = true };
        var p = new Option<int>("-p") { Description = "Classes per image that count (P)", DefaultValueFactory = _ => 10 };
        var output = new Option<string>("--out", "-o") { Description = "Folder for dhat.parquet and selection.json", Required = true };
        var balance = new Option<string>("--balance") { Description = "ranked, unbalanced-zipf or random", DefaultValueFactory = _ => "ranked" };
        var seed = new Option<ulong>("--seed") { Description = "Seed of random selection", DefaultValueFactory = _ => 0UL };
        var command = new Command("select", "Build D-hat (top-K images a class among each image's top-P classes) from stored score shards.")
        {
            scores, k, p, output, balance, seed,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            if (parse.GetValue(k) < 1) throw new ArgumentException("-k must be at least 1");
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var m = await SelectFromScores.RunAsync(parse.GetValue(scores)!, parse.GetValue(k), parse.GetValue(p), parse.GetValue(output)!,
                ParseBalance(parse.GetValue(balance)!), parse.GetValue(seed), cancellationToken);
            var inv = CultureInfo.InvariantCulture;
            Console.WriteLine(string.Create(inv, $"D-hat: {m.Selected:N0} rows ({m.DistinctImages:N0} distinct images) from {m.RowsScored:N0} scored, K={m.K}, P={m.P}, {m.Balance}, in {clock.Elapsed.TotalSeconds:N1} s ({m.RowsScored / Math.Max(1e-9, clock.Elapsed.TotalSeconds):N0} rows/s)"));
            int min = m.Counts.DefaultIfEmpty(0).Min(), max = m.Counts.DefaultIfEmpty(0).Max();
            Console.WriteLine(string.Create(inv, $"  per class: {min:N0} to {max:N0} images -> {parse.GetValue(output)}"));
            return (int)ExitCode.Ok;
        });
        return command;
    }

    internal static BalanceMode ParseBalance(string value) => value.Trim().ToLowerInvariant() switch
    {
        "ranked" => BalanceMode.Ranked,
        "unbalanced-zipf" or "zipf" => BalanceMode.UnbalancedZipf,
        "random" => BalanceMode.Random,
        _ => throw new ArgumentException($"--balance {value}: use ranked, unbalanced-zipf or random"),
    };
}
