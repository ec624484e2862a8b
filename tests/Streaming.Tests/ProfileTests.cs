using Streaming.Core.Scoring;
using Streaming.Core.Options;
using System.Diagnostics;
using System.Text.Json;
using Streaming.Core.Ingest;
using Streaming.Models.IO;
using Streaming.Core.Dataflow;
using Streaming.Core.Profiling;
using Streaming.Engine.Profiling;
using Streaming.Models.Teachers;
using Streaming.Engine.Scoring;
using Streaming.Models.Zoo;
using Xunit;

namespace Streaming.Tests;

/// <summary>The profiler on graphs with a stage slowed on purpose: it must name that stage, and its report must hold together.</summary>
[Collection(nameof(ProcessState))]
public class ProfileTests : IAsyncLifetime
{
    private readonly TempDir _tmp = new();
    private string Small => _tmp.Sub("small");
    private string Photos => _tmp.Sub("photos");

    public async ValueTask InitializeAsync()
    {
        await Ingestor.RunAsync(ImageSource.Open(TestPaths.MiniTar), Small, new IngestOptions { Writer = new() { ShardSize = 100 } });
        await Ingestor.RunAsync(ImageSource.Open(TestPaths.Photos), Photos);
    }

    public ValueTask DisposeAsync()
    {
        _tmp.Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>A stand-in model: fixed scores, after sleeping <paramref name="sleepPerBatch"/> (the slowed stage).</summary>
    private sealed class FakeTeacher(int channels, int size, TimeSpan sleepPerBatch) : ITeacher
    {
        public ModelSpec Spec { get; } = new("fake", 10, channels, size, Enumerable.Repeat(0.5f, channels).ToArray(), Enumerable.Repeat(0.25f, channels).ToArray(),
            Enumerable.Range(0, 10).Select(i => $"c{i}").ToList());

        public void TopK(float[] batch, int n, int k, Span<int> classes, Span<float> probs)
        {
            if (sleepPerBatch > TimeSpan.Zero) Thread.Sleep(sleepPerBatch);
            for (int i = 0; i < n; i++)
                for (int j = 0; j < k; j++)
                {
                    classes[i * k + j] = j;
                    probs[i * k + j] = 1f / (j + 2);
                }
        }

        public void Dispose()
        {
        }
    }

    private static ProfileOptions Options(string data) => new()
    {
        Teacher = "(fake)", Data = data, Duration = TimeSpan.FromSeconds(3), Scoring = new ScoringSpec { Batch = 16, TopP = 5 },
    };

    [Fact]
    public async Task SlowInference_IsNamedTheBottleneck_AndDecodeWorkersAreSaidToGainNothing()
    {
        using var teacher = new FakeTeacher(1, 28, TimeSpan.FromMilliseconds(25));
        var run = await Profiler.RunAsync(Options(Small), teacher);
        var v = run.Verdict!;
        Assert.Equal("infer", v.Bottleneck);
        Assert.True(v.Ranked[0].Busy > 0.8, ProfileAnalysis.Table(v));
        Assert.Contains("Adding decode workers gains nothing", v.Text);
        // Batches of 16 every 25 ms at most: about 640 images/s, never more.
        Assert.InRange(v.ImagesPerSecond, 200, 660);
        Assert.True(run.Samples.Count >= 20, $"{run.Samples.Count} samples in 3 s at 100 ms");
    }

    /// <summary>Each stage's share of its time blocked on a full next stage, and starved for input, at the end of a run.</summary>
    private static (double Blocked, double Starved) Shares(ProfileRun run, string stage)
    {
        var s = run.Samples[^1].Stages.Single(x => x.Stage == stage);
        double total = s.Busy + s.Blocked + s.Starved;
        return (s.Blocked / total, s.Starved / total);
    }

    [Fact]
    public async Task SlowInference_ShowsTheStagesBeforeIt_Blocked_NotStarved()
    {
        using var teacher = new FakeTeacher(1, 28, TimeSpan.FromMilliseconds(25));
        var run = await Profiler.RunAsync(Options(Small), teacher);
        foreach (var stage in new[] { "read", "decode", "batch" })
        {
            var (blocked, starved) = Shares(run, stage);
            Assert.True(blocked >= 0.5 && blocked > starved, $"{stage}: blocked {blocked:P0}, starved {starved:P0}\n{ProfileAnalysis.Table(run.Verdict!)}");
        }
    }

    [Fact]
    public async Task SlowDecoding_ShowsInferenceStarved()
    {
        using var teacher = new FakeTeacher(3, 224, TimeSpan.Zero);
        var run = await Profiler.RunAsync(Options(Photos), teacher);
        var (blocked, starved) = Shares(run, "infer");
        Assert.True(starved >= 0.5 && starved > blocked, $"infer: starved {starved:P0}, blocked {blocked:P0}\n{ProfileAnalysis.Table(run.Verdict!)}");
        var (decodeBlocked, _) = Shares(run, "decode");
        Assert.True(decodeBlocked < 0.2, $"decode: blocked {decodeBlocked:P0}");
    }

    [Fact]
    public async Task LargePhotosWithAnInstantModel_NameDecodeTheBottleneck()
    {
        using var teacher = new FakeTeacher(3, 224, TimeSpan.Zero);
        var run = await Profiler.RunAsync(Options(Photos), teacher);
        Assert.Equal("decode", run.Verdict!.Bottleneck);
        Assert.True(run.Verdict.Ranked[0].Busy > 0.7, ProfileAnalysis.Table(run.Verdict));
    }

    [Fact]
    public async Task Report_HoldsTheVerdictThePlotsAndThePage()
    {
        using var teacher = new FakeTeacher(1, 28, TimeSpan.FromMilliseconds(10));
        var run = await Profiler.RunAsync(Options(Small) with { Duration = TimeSpan.FromSeconds(2) }, teacher);
        var sweep = new[] { new SweepPoint("batch", 16, run.Verdict!), new SweepPoint("batch", 32, run.Verdict!) };
        string report = _tmp.Sub("report");
        ProfileReport.Write(report, run.Options.Describe(), run.Samples, run.Verdict!, sweep);
        foreach (var png in new[] { "throughput.png", "utilization.png", "queues.png", "resources.png", "sweep.png" })
        {
            var bytes = File.ReadAllBytes(Path.Combine(report, png));
            Assert.True(bytes.Length > 1000 && bytes[1] == 'P' && bytes[2] == 'N' && bytes[3] == 'G', png);
        }
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(report, "profile.json")));
        Assert.Equal("infer", json.RootElement.GetProperty("verdict").GetProperty("bottleneck").GetString());
        Assert.Equal(run.Samples.Count, json.RootElement.GetProperty("samples").GetArrayLength());
        string html = File.ReadAllText(Path.Combine(report, "index.html"));
        foreach (var png in new[] { "throughput.png", "utilization.png", "queues.png", "resources.png", "sweep.png" }) Assert.Contains(png, html);
        Assert.Contains("infer is the bottleneck", html);
    }

    [Fact]
    public async Task Cli_ProfilesAScoreStage_AndSweepsABatchSize()
    {
        // An untrained cnn-small is a real model: the profile measures it like any other.
        string model = _tmp.Sub("model.safetensors");
        using (var net = ModelZoo.Create("cnn-small", 10, 1, 1))
            ModelFile.Save(model, net, new ModelSpec("cnn-small", 10, 1, 28, [0.5f], [0.25f], Enumerable.Range(0, 10).Select(i => $"c{i}").ToList()));
        var (code, output) = await CliProcess.RunAsync("profile", "--stage", "score", "--teacher", model, "--data", Small, "--duration", "2",
            "--threads", "1", "--out", _tmp.Sub("cli"), "--sweep", "batch=16,64");
        Assert.True(code == 0, output);
        Assert.Contains("batch=16:", output);
        Assert.Contains("verdict:", output);
        Assert.True(File.Exists(Path.Combine(_tmp.Sub("cli"), "sweep.png")));

        // --json: the verdict on stdout, as jq reads it.
        var (jcode, stdout, stderr) = await CliProcess.RunSplitAsync("profile", "--stage", "score", "--teacher", model, "--data", Small, "--duration", "2",
            "--threads", "1", "--out", _tmp.Sub("cli-json"), "--json");
        Assert.True(jcode == 0, stdout + stderr);
        Assert.Contains("verdict:", stderr);
        await JsonCheck.Jq(stdout, ".verdict.bottleneck != null and .verdict.images_per_s > 0 and (.report | endswith(\"index.html\"))");

        (code, output) = await CliProcess.RunAsync("profile", "--out", _tmp.Sub("x"));
        Assert.Equal(2, code);
        Assert.Contains("--stage score", output);
    }

    [Fact]
    public async Task Training_OnSmallImages_IsBoundByTheTrainStep_AndCountsEveryImage()
    {
        // 28x28 images decode in microseconds; a resnet20 step takes milliseconds per image on a CPU.
        var o = new ProfileOptions
        {
            Stage = ProfileOptions.Train, Arch = "resnet20", Data = Small, Duration = null,
            Scoring = new ScoringSpec { Batch = 32, Compute = new ComputeSpec { Threads = 1 } },
        };
        var run = await Profiler.RunAsync(o);
        Assert.NotNull(run.Verdict);
        var v = run.Verdict!;
        Assert.Equal(["read", "decode", "batch", "train"], run.Samples[^1].Stages.Select(s => s.Stage).ToArray());
        Assert.Equal("train", v.Bottleneck);
        Assert.Contains("A faster training step", v.Text);
        // One pass, last partial batch dropped: 300 images = 9 batches of 32.
        Assert.Equal(288, run.Images);
        var last = run.Samples[^1].Stages;
        Assert.Equal(288, last[3].ItemsOut);
        Assert.True(last[2].ItemsOut >= 288, "every image trained on went through the batch stage first");
        Assert.True(last[1].ItemsOut >= last[2].ItemsOut && last[0].ItemsOut >= last[1].ItemsOut, "counts only fall along the graph");
        Assert.True(v.Ranked.Single(s => s.Stage == "train").Busy > v.Ranked.Single(s => s.Stage == "decode").Busy);
    }

    [Fact]
    public async Task Cli_ProfilesTraining()
    {
        var (code, output) = await CliProcess.RunAsync("profile", "--stage", "train", "--arch", "cnn-small", "--data", Small, "--duration", "2",
            "--threads", "1", "--batch", "16", "--out", _tmp.Sub("train"));
        Assert.True(code == 0, output);
        Assert.Contains("train", output);
        Assert.Contains("verdict:", output);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(_tmp.Sub("train"), "profile.json")));
        Assert.Equal("train", doc.RootElement.GetProperty("settings").GetProperty("stage").GetString());
        Assert.Equal(16, doc.RootElement.GetProperty("settings").GetProperty("batch").GetInt32());

        (code, output) = await CliProcess.RunAsync("profile", "--stage", "train", "--data", Small, "--out", _tmp.Sub("y"));
        Assert.Equal(2, code);
        Assert.Contains("--arch", output);
    }

    [Fact]
    public async Task Telemetry_GivesASpanPerShard_WhenSomeoneListens()
    {
        var spans = new List<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == ScoringTelemetry.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            // Only this test's shards: other tests may score at the same time.
            ActivityStopped = a => { if (((string?)a.GetTagItem("streaming.path"))?.StartsWith(Small, StringComparison.Ordinal) == true) lock (spans) spans.Add(a); },
        };
        ActivitySource.AddActivityListener(listener);
        using var teacher = new FakeTeacher(1, 28, TimeSpan.Zero);
        await Profiler.RunAsync(Options(Small) with { Duration = null }, teacher);
        lock (spans)
        {
            Assert.Equal(3, spans.Count(s => s.OperationName == "score shard"));
            Assert.Equal(300, spans.Sum(s => (int)s.GetTagItem("streaming.images")!));
        }
    }
}
