using System.CommandLine;
using System.Globalization;
using Streaming.Cli.Shared;
using Streaming.Core.Options;
using Streaming.Core.Selection;

namespace Streaming.Cli.Commands;

/// <summary><c>streaming select</c>: D-hat from stored score shards, without inference.</summary>
public static class SelectCommand
{
    public static Command Create()
    {
        var scores = new Option<string>("--scores", "-s") { Description = "Output folder of 'streaming score' (holds scoring.json)", Required = true };
        var k = KnobOption.Create<int>(Knobs.K);
        k.Required = true;
        var p = KnobOption.Create<int>(Knobs.P);
        var output = new Option<string>("--out", "-o") { Description = "Folder for dhat.parquet and selection.json", Required = true };
        var balance = KnobOption.Create<string>(Knobs.Balance);
        var seed = KnobOption.Create<long>(Knobs.SelectionSeed);
        var json = new Option<bool>("--json") { Description = "One JSON document on stdout: selection.json with the time taken (docs/json.md)" };
        var command = new Command("select", "Build D-hat (top-K images a class among each image's top-P classes) from stored score shards.")
        {
            scores, k, p, output, balance, seed, json,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var m = await SelectFromScores.RunAsync(parse.GetValue(scores)!, parse.GetValue(k), parse.GetValue(p), parse.GetValue(output)!,
                BalanceModes.Parse(parse.GetValue(balance)!), (ulong)parse.GetValue(seed), cancellationToken);
            var inv = CultureInfo.InvariantCulture;
            if (parse.GetValue(json))
            {
                var node = System.Text.Json.Nodes.JsonNode.Parse(System.Text.Json.JsonSerializer.Serialize(m))!.AsObject();
                node["out"] = Path.GetFullPath(parse.GetValue(output)!);
                node["seconds"] = Math.Round(clock.Elapsed.TotalSeconds, 3);
                node["rows_per_second"] = Math.Round(m.RowsScored / Math.Max(1e-9, clock.Elapsed.TotalSeconds));
                Console.WriteLine(node.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
                return (int)ExitCode.Ok;
            }
            Console.WriteLine(string.Create(inv, $"D-hat: {m.Selected:N0} rows ({m.DistinctImages:N0} distinct images) from {m.RowsScored:N0} scored, K={m.K}, P={m.P}, {m.Balance}, in {clock.Elapsed.TotalSeconds:N1} s ({m.RowsScored / Math.Max(1e-9, clock.Elapsed.TotalSeconds):N0} rows/s)"));
            int min = m.Counts.DefaultIfEmpty(0).Min(), max = m.Counts.DefaultIfEmpty(0).Max();
            Console.WriteLine(string.Create(inv, $"  per class: {min:N0} to {max:N0} images -> {parse.GetValue(output)}"));
            return (int)ExitCode.Ok;
        });
        return command;
    }
}
