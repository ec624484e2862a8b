using System.Diagnostics;
using Streaming.Core.Ingest;
using Streaming.Models.Training;
using Streaming.Models.Loading;
using Xunit;

namespace Streaming.Tests;

/// <summary>
/// A training run that stops (kill -9, or anything else) and resumes ends with the same weights,
/// bit for bit, as one that never stopped: same seed, same thread count, on the CPU.
/// </summary>
[Collection(nameof(ProcessState))]
public class ResumeTests : IAsyncLifetime
{
    private readonly TempDir _tmp = new();
    private string Data => _tmp.Sub("data");

    public async ValueTask InitializeAsync() =>
        await Ingestor.RunAsync(ImageSource.Open(TestPaths.MiniTar), Data, new IngestOptions { Writer = new() { ShardSize = 100 } });

    public ValueTask DisposeAsync()
    {
        _tmp.Dispose();
        return ValueTask.CompletedTask;
    }

    private TrainOptions Options(string output, bool resume = false) => new()
    {
        Data = Data,
        Arch = "cnn-small",
        Out = output,
        Images = 32 * 24,
        BatchSize = 32,
        BaseLr = 0.2,
        Schedule = ScheduleKind.Cosine,
        Seed = 11,
        Threads = 2,
        DecodeWorkers = 2,
        CheckpointEvery = 32 * 4,
        LogEveryImages = 32,
        Resume = resume,
    };

    private static byte[] Weights(string run) => File.ReadAllBytes(Path.Combine(run, "model.safetensors"));

    [Trait(Traits.Asserts, Traits.BitIdentity)]
    [Fact]
    public async Task Resume_FromAMidRunCheckpoint_GivesBitIdenticalWeights()
    {
        string run = _tmp.Sub("run");
        var full = await Trainer.RunAsync(Options(run) with { CheckpointEvery = 32 * 8 });
        Assert.Equal(24, full.Steps);
        byte[] uninterrupted = Weights(run);
        var checkpoints = Checkpoints.Complete(run);
        Assert.Equal(2, checkpoints.Count); // only the two newest are kept
        Assert.EndsWith("step-000000024", checkpoints[^1]);
        Assert.EndsWith("step-000000016", checkpoints[^2]);

        // As if the run had died between step 16 and step 24.
        Directory.Delete(checkpoints[^1], true);
        File.Delete(Path.Combine(run, "model.safetensors"));
        var resumed = await Trainer.RunAsync(Options(run, resume: true) with { CheckpointEvery = 32 * 8 });
        Assert.True(resumed.Resumed);
        Assert.Equal(uninterrupted, Weights(run));
        // Metrics are not counted twice: one training line per logged step.
        var lines = File.ReadAllLines(Path.Combine(run, Trainer.MetricsFile));
        Assert.Equal(24, lines.Count(l => l.Contains("\"type\":\"train\"")));
    }

    [Trait(Traits.Asserts, Traits.BitIdentity)]
    [Fact]
    public async Task Kill9_ThenResume_GivesBitIdenticalWeights()
    {
        await Trainer.RunAsync(Options(_tmp.Sub("reference")));

        string run = _tmp.Sub("killed");
        var o = Options(run);
        using var process = CliProcess.Start("train", "--data", Data, "--arch", o.Arch, "--out", run, "--images", o.Images!.Value.ToString(),
            "--batch", "32", "--lr", "0.2", "--schedule", "cosine", "--seed", "11", "--threads", "2", "--decode-workers", "2",
            "--checkpoint-every", (32 * 4).ToString());
        var clock = Stopwatch.StartNew();
        while (Checkpoints.Complete(run).Count == 0 && !process.HasExited && clock.Elapsed < TimeSpan.FromMinutes(2))
            await Task.Delay(10);
        Assert.False(process.HasExited, "the run finished before it could be killed");
        process.Kill(entireProcessTree: true); // SIGKILL: no chance to clean up
        await process.WaitForExitAsync();
        Assert.False(File.Exists(Path.Combine(run, "model.safetensors")));
        long killedAt = Checkpoints.ReadState(Checkpoints.Latest(run)!).Step;
        Assert.InRange(killedAt, 4, 23);

        var resumed = await Trainer.RunAsync(Options(run, resume: true));
        Assert.True(resumed.Resumed);
        Assert.Equal(24, resumed.Steps);
        Assert.Equal(Weights(_tmp.Sub("reference")), Weights(run));
    }

    [Fact]
    public async Task Resume_WithOtherSettings_IsRefused()
    {
        string run = _tmp.Sub("r");
        await Trainer.RunAsync(Options(run) with { Images = 32 * 4 });
        var e = await Assert.ThrowsAsync<Streaming.Core.StreamingException>(() => Trainer.RunAsync(Options(run, resume: true) with { Images = 32 * 4, Seed = 12 }));
        Assert.Contains("other settings", e.Message);
        var again = await Assert.ThrowsAsync<Streaming.Core.StreamingException>(() => Trainer.RunAsync(Options(run) with { Images = 32 * 4 }));
        Assert.Contains("--resume", again.Message);
    }
}
