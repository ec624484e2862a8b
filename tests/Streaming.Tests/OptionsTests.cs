using System.CommandLine;
using Streaming.Cli;
using Streaming.Core.Config;
using Streaming.Core.Options;
using Streaming.Daemon;
using Streaming.Engine.Pipelines;
using Xunit;

namespace Streaming.Tests;

/// <summary>
/// The shared settings (<see cref="Knobs"/>) are declared once: every front end that takes one agrees on its default,
/// and reports a bad value in its own words.
/// </summary>
[Collection(nameof(ProcessState))]
public class OptionsTests
{
    private static IEnumerable<(string Verb, Option Option, OptionSpec Spec)> CliKnobs(Command command, string path = "")
    {
        foreach (var option in command.Options)
            if (KnobOption.SpecOf(option) is { } spec) yield return (path + command.Name, option, spec);
        foreach (var sub in command.Subcommands)
            foreach (var x in CliKnobs(sub, path + command.Name + " ")) yield return x;
    }

    private static object? Default(Option option)
    {
        var parse = new RootCommand { option }.Parse([]);
        return parse.GetResult(option) is { } result ? result.GetValueOrDefault<object?>() : null;
    }

    [Fact]
    public void EveryFrontEnd_GivesASharedSetting_ItsOneDefault()
    {
        var cli = CliKnobs(StreamingCli.CreateRoot()).ToList();
        Assert.True(cli.Count >= 20, $"only {cli.Count} command-line options come from shared settings");
        foreach (var spec in new[] { Knobs.TopP, Knobs.ScoringBatch, Knobs.P, Knobs.Balance, Knobs.Threads, Knobs.Isa })
            Assert.Contains(cli, x => x.Spec == spec);
        var disagree = new List<string>();
        foreach (var (verb, option, spec) in cli)
        {
            if (option is not { HasDefaultValue: true }) continue; // a profile's what-if: unset means the pipeline's value
            var value = Default(option);
            string text = value is bool b ? (b ? "true" : "false") : Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? "";
            if (text != spec.DefaultText)
                disagree.Add($"{verb} {option.Name}: {value} against {spec.Key}'s {spec.DefaultText}");
        }
        foreach (var (file, schema) in new[] { ("daemon config", DaemonConfig.Schema), ("pipeline manifest", PipelineManifest.Schema) })
            foreach (var key in schema.Keys)
                if (Knobs.All.FirstOrDefault(s => s.Key == key.Name) is { } spec && !Equals(key.Default, spec.Default))
                    disagree.Add($"{file} {key.Name}: {key.Default} against {spec.DefaultText}");
        Assert.True(disagree.Count == 0, string.Join("\n", disagree));
    }

    [Fact]
    public void TheReadme_ListsEverySharedSetting_WithItsFlagAndDefault()
    {
        var rows = File.ReadAllLines(Path.Combine(TestPaths.Root, "README.md")).Where(l => l.StartsWith("| `", StringComparison.Ordinal)).ToList();
        foreach (var spec in Knobs.All)
        {
            var row = rows.FirstOrDefault(r => r.StartsWith($"| `{spec.Key}` |", StringComparison.Ordinal));
            Assert.True(row is not null, $"README.md has no row for {spec.Key}");
            var cells = row.Split('|').Select(c => c.Trim()).ToArray();
            Assert.StartsWith($"`{spec.Flag}`", cells[2]);
            Assert.StartsWith(spec.Default is null ? "none" : spec.DefaultText, cells[3]);
        }
    }

    [Fact]
    public void TheDaemonAndThePipeline_TakeTheSameKeys_ForTheSameSettings()
    {
        foreach (var spec in new[] { Knobs.TopP, Knobs.K, Knobs.P, Knobs.Balance, Knobs.ScoringBatch, Knobs.DecodeWorkers, Knobs.Threads, Knobs.Device, Knobs.Isa, Knobs.ChannelsLast })
        {
            Assert.Contains(DaemonConfig.Schema.Keys, k => k.Name == spec.Key);
            Assert.Contains(PipelineManifest.Schema.Keys, k => k.Name == spec.Key);
        }
    }

    [Fact]
    public async Task ABadValue_IsReported_InEachFrontEndsOwnWords()
    {
        using var tmp = new TempDir();
        var (code, output) = await CliProcess.RunAsync("score", "--teacher", "t", "--data", "d", "--out", tmp.Sub("o"), "--top-p", "0");
        Assert.Equal(2, code);
        Assert.Contains("--top-p 0: must be at least 1", output);
        Assert.DoesNotContain("scoring.top_p", output);

        File.WriteAllText(tmp.Sub("daemon.yaml"), $"teacher: {TestPaths.Fixture("teacher-cnn.onnx")}\ninbox: {tmp.Sub("in")}\nstate: {tmp.Sub("st")}\nscoring:\n  k: 5\n  top_p: 0\n");
        var e = Assert.Throws<Streaming.Core.StreamingException>(() => DaemonConfig.Load(tmp.Sub("daemon.yaml"), []));
        Assert.Contains("daemon.yaml:6: 'scoring.top_p' must be at least 1", e.Message);
        Assert.DoesNotContain("--top-p", e.Message);

        e = Assert.Throws<Streaming.Core.StreamingException>(() => DaemonConfig.Load(null, [$"teacher={TestPaths.Fixture("teacher-cnn.onnx")}", $"inbox={tmp.Sub("in")}", $"state={tmp.Sub("st")}", "scoring.k=5", "scoring.batch=100000"]));
        Assert.Contains("'scoring.batch' must be at most 65536", e.Message);

        // Older daemon configs name threads and the device under scoring: still taken, under their current keys.
        var config = DaemonConfig.Load(null, [$"teacher={TestPaths.Fixture("teacher-cnn.onnx")}", $"inbox={tmp.Sub("in")}", $"state={tmp.Sub("st")}", "scoring.k=5", "scoring.threads=3"]);
        Assert.Equal(3, config.Threads);
    }

    [Fact]
    public void AnOptionsType_RefusesABadValue_NamingTheSetting()
    {
        var e = Assert.Throws<OptionException>(() => new Streaming.Engine.Scoring.ScoreOptions { Teacher = "t", Data = "d", Out = "o", BatchSize = 0 });
        Assert.Equal(Knobs.ScoringBatch, e.Spec);
        Assert.Equal("--batch 0: must be at least 1", e.ForCommandLine);
        Assert.Equal("f.yaml:3: 'scoring.batch' must be at least 1, not 0", e.ForFile("f.yaml:3"));
    }
}
