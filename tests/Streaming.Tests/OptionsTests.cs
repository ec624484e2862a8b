using System.CommandLine;
using Streaming.Cli;
using Streaming.Cli.Shared;
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
        foreach (var spec in new OptionSpec[] { Knobs.TopP, Knobs.ScoringBatch, Knobs.P, Knobs.Balance, Knobs.Threads, Knobs.Isa })
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
                if (Knobs.All.FirstOrDefault(s => s.Key == key.Name) is { } spec && !Equals(key.Default, spec.BoxedDefault))
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
            Assert.StartsWith(spec.BoxedDefault is null ? "none" : spec.DefaultText, cells[3]);
        }
    }

    [Fact]
    public void TheDaemonAndThePipeline_TakeTheSameKeys_ForTheSameSettings()
    {
        foreach (var spec in new OptionSpec[] { Knobs.TopP, Knobs.K, Knobs.P, Knobs.Balance, Knobs.ScoringBatch, Knobs.DecodeWorkers, Knobs.Threads, Knobs.Device, Knobs.Isa, Knobs.ChannelsLast })
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
        Assert.Equal(3, config.Scoring.Compute.Threads);
    }

    [Fact]
    public void AnOptionsType_RefusesABadValue_NamingTheSetting()
    {
        var e = Assert.Throws<OptionException>(() => new Streaming.Core.Scoring.ScoringSpec { Batch = 0 });
        Assert.Equal(Knobs.ScoringBatch, e.Spec);
        Assert.Equal("--batch 0: must be at least 1", e.ForCommandLine);
        Assert.Equal("f.yaml:3: 'scoring.batch' must be at least 1, not 0", e.ForFile("f.yaml:3"));
    }
}

/// <summary>
/// The scoring's knobs are one typed spec (<see cref="Streaming.Core.Scoring.ScoringSpec"/>), bound the same from the
/// command line, a pipeline manifest, the daemon's config and a cluster job, and validated once: P at most P'.
/// </summary>
[Collection(nameof(ProcessState))]
public class ScoringSpecTests
{
    private static readonly string[] Keys = ["scoring.top_p=7", "scoring.k=30", "scoring.p=3", "scoring.balance=random", "scoring.batch=64", "scoring.decode_workers=2",
        "threads=2", "device=cpu", "compute.channels_last=false"];

    private static Streaming.Core.Scoring.ScoringSpec Expected => new()
    {
        TopP = 7, K = 30, P = 3, Balance = Streaming.Core.Selection.BalanceMode.Random, Batch = 64, DecodeWorkers = 2,
        Compute = new ComputeSpec { Threads = 2, Device = "cpu", ChannelsLast = false },
    };

    [Fact]
    public void TheCommandLine_APipeline_TheDaemonConfig_AndAClusterJob_BindTheSameSpec()
    {
        using var tmp = new TempDir();
        var flags = new Streaming.Cli.Commands.ScoringFlags();
        var command = new RootCommand();
        flags.AddTo(command);
        var cli = flags.Bind(command.Parse(["--top-p", "7", "-k", "30", "-p", "3", "--balance", "random", "--batch", "64", "--decode-workers", "2",
            "--threads", "2", "--device", "cpu", "--channels-last", "false"]));
        Assert.Equal(Expected, cli);

        var daemon = DaemonConfig.Load(null, [$"teacher={TestPaths.Fixture("teacher-cnn.onnx")}", $"inbox={tmp.Sub("in")}", $"state={tmp.Sub("st")}", .. Keys]);
        Assert.Equal(Expected, daemon.Scoring);

        var pipeline = PipelineManifest.Load(Path.Combine(TestPaths.Root, "pipelines", "fashion-mnist.yaml"), [.. Keys, "seed=0"]);
        Assert.Equal(Expected, pipeline.Spec.Scoring);

        // A job carries what its bytes depend on; a worker adds its own decode workers and device.
        var job = Streaming.Cluster.Client.JobSpec.For(cli, "native", "t", "t", "d", "d", "o", 30, []);
        Assert.Equal(Expected, job.Scoring(decodeWorkers: 2, device: "cpu"));
    }

    [Fact]
    public async Task PAboveTheKeptClasses_IsRefused_ByEveryFrontEnd_InItsOwnWords()
    {
        using var tmp = new TempDir();
        var (code, output) = await CliProcess.RunAsync("score", "--teacher", "t", "--data", "d", "--out", tmp.Sub("o"), "--top-p", "3", "-k", "5", "-p", "4");
        Assert.Equal(2, code);
        Assert.Contains("-p 4: must be at most scoring.top_p (3)", output);

        var e = Assert.Throws<Streaming.Core.StreamingException>(() => DaemonConfig.Load(null,
            [$"teacher={TestPaths.Fixture("teacher-cnn.onnx")}", $"inbox={tmp.Sub("in")}", $"state={tmp.Sub("st")}", "scoring.k=5", "scoring.top_p=3", "scoring.p=4"]));
        Assert.Contains("'scoring.p' must be at most scoring.top_p (3)", e.Message);

        File.WriteAllText(tmp.Sub("p.yaml"), File.ReadAllText(Path.Combine(TestPaths.Root, "pipelines", "fashion-mnist.yaml")));
        e = Assert.Throws<Streaming.Core.StreamingException>(() => PipelineManifest.Load(tmp.Sub("p.yaml"), ["scoring.top_p=3", "scoring.p=4"]));
        Assert.Contains("p.yaml: 'scoring.p' must be at most scoring.top_p (3)", e.Message);

        // Without K nothing is selected, so P does not matter.
        Assert.Equal(4, new Streaming.Core.Scoring.ScoringSpec { TopP = 3, P = 4 }.Validated().P);
        Assert.Throws<OptionException>(() => new Streaming.Core.Scoring.ScoringSpec { TopP = 3, P = 4, K = 1 }.Validated());
    }
}
