using System.Diagnostics;
using Streaming.Core.Ingest;
using Streaming.Models.IO;
using Streaming.Models.Training;
using Xunit;
using static TorchSharp.torch;

namespace Streaming.Tests;

/// <summary>
/// Data-parallel training over MPI (issue 29), through the real command line under Open MPI's <c>mpirun</c>, two ranks
/// on this machine: the same weights as one process where no BatchNorm splits the batch, byte-identical reruns, a
/// killed rank ending the job fast and a resume that comes out byte-identical, and the refusals at start.
/// </summary>
[Collection(nameof(ProcessState))]
public class DistributedTrainingTests : IAsyncLifetime
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

    private static string Cli => Path.Combine(AppContext.BaseDirectory, "streaming.dll");

    /// <summary>mpirun starting <c>streaming</c> programs: each with its rank count, arguments and injected fault (one program N times, or one a rank).</summary>
    private static ProcessStartInfo Mpirun(IReadOnlyList<(int Count, string[] Args, string? Fault)> programs)
    {
        Prerequisite.Mpirun.Require();
        var psi = new ProcessStartInfo("mpirun") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "--allow-run-as-root", "--oversubscribe", "--bind-to", "none" }) psi.ArgumentList.Add(a);
        for (int i = 0; i < programs.Count; i++)
        {
            if (i > 0) psi.ArgumentList.Add(":");
            var (count, args, fault) = programs[i];
            psi.ArgumentList.Add("-np");
            psi.ArgumentList.Add(count.ToString(System.Globalization.CultureInfo.InvariantCulture));
            if (fault is not null)
            {
                psi.ArgumentList.Add("-x");
                psi.ArgumentList.Add($"STREAMING_FAULT={fault}");
            }
            foreach (var a in new[] { "dotnet", "exec", Cli }.Concat(args)) psi.ArgumentList.Add(a);
        }
        return psi;
    }

    /// <summary><c>streaming</c> alone, without a launcher.</summary>
    private static ProcessStartInfo OneProcess(string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "exec", Cli }.Concat(args)) psi.ArgumentList.Add(a);
        return psi;
    }

    private static async Task<(int Code, string Output, TimeSpan Elapsed)> RunAsync(ProcessStartInfo psi, TimeSpan? limit = null)
    {
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cancel = new CancellationTokenSource(limit ?? TimeSpan.FromMinutes(5));
        try
        {
            await process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"mpirun did not end in time: {await stdout}{await stderr}");
        }
        return (process.ExitCode, await stdout + await stderr, clock.Elapsed);
    }

    private static Task<(int Code, string Output, TimeSpan Elapsed)> Train(int ranks, string[] args, string? fault = null) =>
        RunAsync(Mpirun([(ranks, ["train", .. args], fault)]));

    private string[] Args(string arch, string output, int images = 32 * 20, string[]? more = null, int batch = 32, int seed = 1, string? data = null) =>
        ["--data", data ?? Data, "--arch", arch, "--out", output, "--images", images.ToString(System.Globalization.CultureInfo.InvariantCulture),
         "--batch", batch.ToString(System.Globalization.CultureInfo.InvariantCulture), "--lr", "0.2", "--schedule", "cosine",
         "--seed", seed.ToString(System.Globalization.CultureInfo.InvariantCulture), "--threads", "1", "--no-augment", "--overwrite", .. more ?? []];

    /// <summary>The largest, over the tensors, of |a - b| / |a| (L2 norms): how far two models' weights are apart.</summary>
    private static double RelativeDifference(string a, string b)
    {
        using var scope = NewDisposeScope();
        var x = SafeTensors.Load(a).Tensors;
        var y = SafeTensors.Load(b).Tensors;
        double worst = 0;
        foreach (var (name, t) in x)
        {
            var u = t.to(float64);
            var v = y[name].to(float64);
            double norm = u.norm().item<double>();
            if (norm > 0) worst = Math.Max(worst, (u - v).norm().item<double>() / norm);
        }
        return worst;
    }

    private static string Model(string run) => Path.Combine(run, ModelFile.DefaultName);

    [Fact]
    public async Task WithoutBatchNorm_TwoRanksAtHalfTheBatch_TrainTheWeightsOfOneProcess_AndFailTheCheckWithoutTheAllreduce()
    {
        string one = _tmp.Sub("plain-1"), two = _tmp.Sub("plain-2"), skipped = _tmp.Sub("plain-2-no-allreduce");
        var (code, output, _) = await RunAsync(OneProcess(["train", .. Args("cnn-plain", one)]));
        Assert.True(code == 0, output);
        (code, output, _) = await Train(2, Args("cnn-plain", two));
        Assert.True(code == 0, output);
        Assert.Contains("data-parallel over 2 ranks", output);
        Assert.Contains("B/N = 16", output);
        double apart = RelativeDifference(Model(one), Model(two));
        Assert.True(apart < 1e-5, $"20 steps on 2 ranks are {apart:G3} apart from one process (relative)");

        // The check can fail: ranks that do not average their gradients each follow their own half of every batch.
        (code, output, _) = await Train(2, Args("cnn-plain", skipped), fault: "skip-allreduce");
        Assert.True(code == 0, output);
        double wrong = RelativeDifference(Model(one), Model(skipped));
        Assert.True(wrong > 1e-3, $"without the allreduce the weights are only {wrong:G3} apart");
    }

    [Fact]
    public async Task WithBatchNorm_TwoRankRunsAreByteIdentical_AndAsAccurateAsOneProcess()
    {
        string[] more = ["--eval-data", Data];
        var runs = new[] { _tmp.Sub("bn-1"), _tmp.Sub("bn-2") };
        var (code, output, _) = await RunAsync(OneProcess(["train", .. Args("cnn-small", runs[0], 32 * 150, more)]));
        Assert.True(code == 0, output);
        (code, output, _) = await Train(2, Args("cnn-small", runs[1], 32 * 150, more));
        Assert.True(code == 0, output);
        var first = File.ReadAllBytes(Model(runs[1]));
        Assert.NotNull(Checkpoints.Latest(runs[1]));
        // Again over the same folder with --overwrite: rank 1 must not find the first run's checkpoints while rank 0
        // empties the folder (it did once, and refused the run).
        (code, output, _) = await Train(2, Args("cnn-small", runs[1], 32 * 150, more));
        Assert.True(code == 0, output);
        Assert.Equal(first, File.ReadAllBytes(Model(runs[1])));
        double Top1(string run) => System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "eval.json"))).RootElement.GetProperty("top1").GetDouble();
        Assert.True(Math.Abs(Top1(runs[0]) - Top1(runs[1])) <= 0.02, $"top-1 {Top1(runs[0]):P2} in one process, {Top1(runs[1]):P2} on 2 ranks");
        var config = File.ReadAllText(Path.Combine(runs[1], "config.json"));
        Assert.Contains("\"BatchPerRank\": 16", config);
        Assert.Contains("\"BatchNorm\": \"per rank\"", config);
    }

    /// <summary>The process of rank <paramref name="rank"/> of a job writing into <paramref name="run"/>, once it has started.</summary>
    private static int? RankProcess(string run, int rank)
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc").Where(d => int.TryParse(Path.GetFileName(d), out _)))
        {
            try
            {
                if (!File.ReadAllText(Path.Combine(dir, "cmdline")).Contains(run, StringComparison.Ordinal)) continue;
                if (File.ReadAllText(Path.Combine(dir, "environ")).Split('\0').Contains($"OMPI_COMM_WORLD_RANK={rank}")) return int.Parse(Path.GetFileName(dir), System.Globalization.CultureInfo.InvariantCulture);
            }
            catch (IOException)
            {
            }
        }
        return null;
    }

    [Fact]
    public async Task Kill9OfRank1_EndsTheJobWithin60s_NamingTheRank_AndResumeIsByteIdenticalToAnUninterruptedRun()
    {
        string reference = _tmp.Sub("whole"), killed = _tmp.Sub("killed");
        string[] more = ["--checkpoint-every", "160"];
        var (code, output, _) = await Train(2, Args("cnn-small", reference, 32 * 80, more));
        Assert.True(code == 0, output);

        var job = Task.Run(() => Train(2, Args("cnn-small", killed, 32 * 80, more)));
        string checkpoints = Path.Combine(killed, "checkpoints");
        var clock = Stopwatch.StartNew();
        while (!(Directory.Exists(checkpoints) && Directory.EnumerateDirectories(checkpoints, "step-*").Any(d => !d.Contains(".tmp", StringComparison.Ordinal))))
        {
            Assert.True(clock.Elapsed < TimeSpan.FromMinutes(3) && !job.IsCompleted, "no checkpoint was written");
            await Task.Delay(100);
        }
        int pid = RankProcess(killed, 1) ?? throw new Xunit.Sdk.XunitException("rank 1 not found");
        var killedAt = Stopwatch.StartNew();
        Process.GetProcessById(pid).Kill();
        (code, output, _) = await job;
        var ended = killedAt.Elapsed;
        Assert.NotEqual(0, code);
        Assert.True(ended < TimeSpan.FromSeconds(60), $"the job ended {ended.TotalSeconds:F0} s after the kill");
        Assert.Contains($"[rank 0] stopping: rank 1 (pid {pid} on", output);
        Assert.False(File.Exists(Model(killed)), "the killed job finished");

        (code, output, _) = await Train(2, [.. Args("cnn-small", killed, 32 * 80, more).Where(a => a != "--overwrite"), "--resume"]);
        Assert.True(code == 0, output);
        Assert.Contains("resumed from", output);
        Assert.Equal(File.ReadAllBytes(Model(reference)), File.ReadAllBytes(Model(killed)));
    }

    [Fact]
    public async Task TheRefusals_ABatchTheRanksDoNotDivide_RanksThatDisagree_AndDataMissingOnOneRank_AreOneLineBeforeAnyStep()
    {
        var (code, output, _) = await Train(2, Args("cnn-small", _tmp.Sub("odd"), batch: 33));
        Assert.NotEqual(0, code);
        Assert.Contains("error: --batch 33: the global batch must split evenly over the 2 ranks", output);
        Assert.DoesNotContain("step 1/", output);

        string disagree = _tmp.Sub("disagree");
        (code, output, _) = await RunAsync(Mpirun([(1, ["train", .. Args("cnn-small", disagree)], null), (1, ["train", .. Args("cnn-small", disagree, seed: 2)], null)]));
        Assert.NotEqual(0, code);
        Assert.Contains("error: the ranks disagree on the run: Seed is 1 on rank 0 but 2 on rank 1", output);
        Assert.Single(output.Split('\n'), l => l.Contains("disagree", StringComparison.Ordinal));

        string missing = _tmp.Sub("missing");
        (code, output, _) = await RunAsync(Mpirun([(1, ["train", .. Args("cnn-small", missing)], null), (1, ["train", .. Args("cnn-small", missing, data: _tmp.Sub("no-such-data"))], null)]));
        Assert.NotEqual(0, code);
        Assert.Contains("error: reading the data: rank 1: ", output);
        Assert.Contains("no-such-data", output);
        Assert.False(Directory.Exists(Path.Combine(_tmp.Sub("missing"), "checkpoints")));
    }
}
