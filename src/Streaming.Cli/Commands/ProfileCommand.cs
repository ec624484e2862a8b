using System.CommandLine;
using System.Globalization;
using Streaming.Cli.Shared;
using Streaming.Core.Dataflow;
using Streaming.Core.Profiling;
using Streaming.Core.Options;
using Streaming.Core.Scoring;
using Streaming.Engine.Profiling;

namespace Streaming.Cli.Commands;

/// <summary><c>streaming profile</c>: where the time goes in the scoring or the training graph, with a verdict and a report.</summary>
public static class ProfileCommand
{
    public static Command Create()
    {
        var pipeline = new Argument<string?>("pipeline") { Description = "A pipeline manifest whose run (runs/<name>, or --run) supplies the teacher and U (--stage score), or the student and D-hat (--stage train)", Arity = ArgumentArity.ZeroOrOne };
        var run = new Option<string?>("--run") { Description = "With a pipeline: its run folder (default runs/<name>)" };
        var stage = new Option<string?>("--stage") { Description = "The graph to profile: score (read, decode, batch, infer, write) or train (read, decode + augment, batch, train step); with a pipeline, score by default" };
        var teacher = new Option<string?>("--teacher", "-t") { Description = "With --stage score: the teacher model" };
        var arch = new Option<string?>("--arch", "-a") { Description = "With --stage train: the architecture to train (e.g. resnet20)" };
        var data = new Option<string?>("--data", "-d") { Description = "The dataset to score (--stage score) or to train on (--stage train)" };
        var output = new Option<string>("--out", "-o") { Description = "Report folder: index.html, profile.json, PNG plots", Required = true };
        var duration = new Option<double>("--duration") { Description = "Seconds to run (the data is read round and round); 0: one pass", DefaultValueFactory = _ => 20 };
        var workers = KnobOption.Create<int?>(Knobs.DecodeWorkers, description: "What if: decode workers", withDefault: false);
        var batch = KnobOption.Create<int?>(Knobs.ScoringBatch, description: "What if: inference batch (default 256) or training batch (default 128)", withDefault: false, aliases: "-b");
        var threads = KnobOption.Create<int?>(Knobs.Threads, description: "What if: libtorch threads (default: the pipeline's, else all cores)", withDefault: false);
        var device = KnobOption.Create<string?>(Knobs.Device, description: "What if: auto, cpu, cuda or cuda:N", withDefault: false);
        var topP = KnobOption.Create<int?>(Knobs.TopP, description: "P' kept per image", withDefault: false);
        var sweep = new Option<string?>("--sweep") { Description = "Run once per value and plot throughput against the knob, e.g. batch=32,64,128 (knobs: batch, decode-workers, threads)" };
        var interval = new Option<int>("--interval-ms") { Description = "Sampling interval", DefaultValueFactory = _ => 100 };
        var json = new Option<bool>("--json") { Description = "The verdict (and the sweep) as one JSON document on stdout; the table on stderr" };
        var isa = KnobOption.Create<string>(Knobs.Isa);
        var channelsLast = KnobOption.Create<bool>(Knobs.ChannelsLast);
        var command = new Command("profile", "Profile the scoring or the training graph: per-stage throughput, busy / blocked / starved time and queues every 100 ms; names the bottleneck and the headroom; writes a report with plots.")
        {
            pipeline, run, stage, teacher, arch, data, output, duration, workers, batch, threads, device, topP, sweep, interval, isa, channelsLast, json,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            ProfileOptions o;
            if (parse.GetValue(pipeline) is string manifest)
            {
                o = Profiler.FromPipeline(manifest, parse.GetValue(run), parse.GetValue(stage) ?? ProfileOptions.Score);
            }
            else
            {
                o = parse.GetValue(stage) switch
                {
                    ProfileOptions.Score => new ProfileOptions
                    {
                        Teacher = parse.GetValue(teacher) ?? throw new ArgumentException("--stage score needs --teacher"),
                        Data = parse.GetValue(data) ?? throw new ArgumentException("--stage score needs --data"),
                    },
                    ProfileOptions.Train => new ProfileOptions
                    {
                        Stage = ProfileOptions.Train,
                        Arch = parse.GetValue(arch) ?? throw new ArgumentException("--stage train needs --arch"),
                        Data = parse.GetValue(data) ?? throw new ArgumentException("--stage train needs --data"),
                        Scoring = new ScoringSpec { Batch = Streaming.Models.Training.TrainOptions.DefaultBatch },
                    },
                    _ => throw new ArgumentException("give a pipeline manifest, or --stage score with --teacher and --data, or --stage train with --arch and --data"),
                };
            }
            if (o.Stage == ProfileOptions.Train && parse.GetValue(teacher) is not null) throw new ArgumentException("--teacher is for --stage score; training profiles take --arch");
            if (o.Stage == ProfileOptions.Score && parse.GetValue(arch) is not null) throw new ArgumentException("--arch is for --stage train; scoring profiles take --teacher");
            if (o.Stage == ProfileOptions.Train && parse.GetValue(topP) is not null) throw new ArgumentException("--top-p is for --stage score");
            double seconds = parse.GetValue(duration);
            if (seconds < 0) throw new ArgumentException("--duration must be 0 (one pass) or more");
            if (parse.GetValue(interval) < 10) throw new ArgumentException("--interval-ms must be at least 10");
            // The ISA and the layout hold for the whole process; threads are a knob of each run (a sweep may vary them).
            var s = o.Scoring;
            o = o with
            {
                Duration = seconds > 0 ? TimeSpan.FromSeconds(seconds) : null,
                Scoring = s with
                {
                    DecodeWorkers = parse.GetValue(workers) ?? s.DecodeWorkers,
                    Batch = parse.GetValue(batch) ?? s.Batch,
                    TopP = parse.GetValue(topP) ?? s.TopP,
                    Compute = s.Compute with
                    {
                        Threads = parse.GetValue(threads) ?? s.Compute.Threads,
                        Device = parse.GetValue(device) ?? s.Compute.Device,
                        Isa = Streaming.Core.Compute.KernelIsas.Parse(parse.GetValue(isa)!),
                        ChannelsLast = parse.GetValue(channelsLast),
                    },
                },
                Interval = TimeSpan.FromMilliseconds(parse.GetValue(interval)),
            };
            string outDir = parse.GetValue(output)!;
            var inv = CultureInfo.InvariantCulture;
            bool asJson = parse.GetValue(json);
            var said = asJson ? Console.Error : Console.Out; // with --json, stdout holds the document only
            var console = new ConsoleProgress();
            List<SweepPoint>? points = null;
            ProfileRun main;
            if (parse.GetValue(sweep) is string sweepText)
            {
                var (knob, values) = Profiler.ParseSweep(sweepText);
                points = [];
                var runs = new List<ProfileRun>();
                foreach (int value in values)
                {
                    console.Report($"  profiling {knob}={value} for {(o.Duration is { } d ? d.TotalSeconds.ToString("F0", inv) + " s" : "one pass")} ...");
                    var r = await Profiler.RunAsync(Profiler.With(o, knob, value), cancellationToken: cancellationToken);
                    console.Done();
                    if (r.Verdict is null) throw new Core.StreamingException("the run was too short to sample; raise --duration");
                    said.WriteLine(string.Create(inv, $"{knob}={value}: {r.Verdict.ImagesPerSecond:N0} images/s, bottleneck {r.Verdict.Bottleneck}"));
                    points.Add(new SweepPoint(knob, value, r.Verdict));
                    runs.Add(r);
                }
                main = runs.OrderByDescending(r => r.Verdict!.ImagesPerSecond).First();
                said.WriteLine(string.Create(inv, $"fastest: {knob}={points[runs.IndexOf(main)].Value}; its profile follows"));
            }
            else
            {
                console.Report($"  profiling for {(o.Duration is { } d ? d.TotalSeconds.ToString("F0", inv) + " s" : "one pass")} ...");
                main = await Profiler.RunAsync(o, cancellationToken: cancellationToken);
                console.Done();
                if (main.Verdict is null) throw new Core.StreamingException("the run was too short to sample; raise --duration");
            }
            said.Write(ProfileAnalysis.Table(main.Verdict!));
            ProfileReport.Write(outDir, main.Options.Describe(), main.Samples, main.Verdict!, points);
            said.WriteLine($"report: {Path.Combine(outDir, "index.html")}");
            if (asJson)
                Console.WriteLine(System.Text.Json.JsonSerializer.Serialize(new { verdict = main.Verdict, sweep = points, report = Path.GetFullPath(Path.Combine(outDir, "index.html")) },
                    new System.Text.Json.JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower }));
            return (int)ExitCode.Ok;
        });
        return command;
    }
}
