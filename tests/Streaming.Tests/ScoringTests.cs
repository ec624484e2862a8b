using Streaming.Core.Scoring;
using Streaming.Core.Options;
using Streaming.Core.Datasets;
using Streaming.Core.Ingest;
using Streaming.Core.Selection;
using Streaming.Core.Dataflow;
using Streaming.Models.Teachers;
using Streaming.Engine.Scoring;
using Streaming.Models.Training;
using Streaming.Models.Loading;
using Xunit;

namespace Streaming.Tests;

/// <summary>The scoring engine end to end on the committed sample, with a small teacher trained here.</summary>
[Collection(nameof(ProcessState))]
public class ScoringTests : IAsyncLifetime
{
    private readonly TempDir _tmp = new();
    private string Labeled => _tmp.Sub("labeled");
    private string Unlabeled => _tmp.Sub("u");
    private string Teacher => _tmp.Sub("teacher");

    public async ValueTask InitializeAsync()
    {
        await Ingestor.RunAsync(ImageSource.Open(TestPaths.MiniTar), Labeled, new IngestOptions { Writer = new() { ShardSize = 100 } });
        await DatasetSplitter.SplitAsync(Labeled, 5, 0, _tmp.Sub("d"), Unlabeled, new DatasetWriterOptions { ShardSize = 60 });
        await Trainer.RunAsync(new TrainOptions
        {
            Data = Labeled, Arch = "cnn-small", Out = Teacher, Images = 32 * 10, BatchSize = 32, BaseLr = 0.2,
            Schedule = ScheduleKind.Cosine, Threads = 2,
        });
    }

    public ValueTask DisposeAsync()
    {
        _tmp.Dispose();
        return ValueTask.CompletedTask;
    }

    private Task<ScoreResult> Score(string output, int workers = 1, int batch = 64, IReadOnlyList<int>? order = null, int? k = 8) =>
        ScoreEngine.RunAsync(new ScoreOptions
        {
            Teacher = Teacher, Data = Unlabeled, Out = output, ShardOrder = order,
            Scoring = new ScoringSpec { TopP = 5, Batch = batch, DecodeWorkers = workers, K = k, P = 2, Compute = new ComputeSpec { Threads = 2 } },
        });

    private static byte[] Dhat(string output) => File.ReadAllBytes(Path.Combine(output, "selection", SelectionManifest.DhatFileName));

    /// <summary>A teacher that fails on its <paramref name="failAt"/>-th batch.</summary>
    private sealed class FailingTeacher(ITeacher inner, int failAt) : ITeacher
    {
        private int _calls;
        public Streaming.Models.IO.ModelSpec Spec => inner.Spec;

        public void TopK(float[] pixels, int n, int k, Span<int> classes, Span<float> probs)
        {
            if (++_calls == failAt) throw new InvalidOperationException("the model failed");
            inner.TopK(pixels, n, k, classes, probs);
        }

        public void Dispose() => inner.Dispose();
    }

    /// <summary>A host that writes score shards into a folder and counts the commits.</summary>
    private sealed class CountingHost(string folder) : IScoringHost<int>
    {
        public int Committed;

        public string ScoreFile(Streaming.Engine.Scoring.Stages.ShardJob shard, int tag) => Path.Combine(folder, $"fail-{shard.Input}.parquet");

        public ValueTask CommittedAsync(Streaming.Engine.Scoring.Stages.ShardCommit commit, int tag)
        {
            Committed++;
            return ValueTask.CompletedTask;
        }
    }

    [Fact]
    public async Task AFailingModel_FaultsTheGraphWithItsError_AndEveryPooledBatchGoesBack()
    {
        using var teacher = new FailingTeacher(Teachers.Open(Teacher, TorchSharp.torch.CPU), failAt: 3);
        var host = new CountingHost(_tmp.Path);
        var spec = new ScoringSpec { TopP = 5, Batch = 16, DecodeWorkers = 2, Compute = new ComputeSpec { Threads = 2 } };
        await using var session = await ScoringSession<int>.OpenAsync(spec, Teacher, host, new ScoringSetupOptions { Teachers = new LentTeacherSource(teacher) });
        var dataset = DatasetManifest.Load(Unlabeled);
        var send = Task.Run(async () =>
        {
            try
            {
                for (int i = 0; i < dataset.Shards.Count; i++) await session.SendAsync(Path.Combine(Unlabeled, dataset.Shards[i].File), dataset.Shards[i].File, i);
                await session.DrainAsync();
            }
            catch (Exception)
            {
                // the graph stopped taking shards: its error comes from WaitAsync
            }
        });
        var error = await Assert.ThrowsAsync<InvalidOperationException>(session.WaitAsync);
        await send;
        Assert.Equal("the model failed", error.Message);
        Assert.True(host.Committed <= 1, $"{host.Committed} shards committed before the third batch");
        Assert.Equal(0, session.BatchesOutstanding);
    }

    [Trait(Traits.Asserts, Traits.BitIdentity)]
    [Fact]
    public async Task Dhat_IsByteIdentical_AcrossWorkersShardOrderAndRestarts()
    {
        var first = await Score(_tmp.Sub("w1"));
        Assert.Equal(250, first.ImagesScored);
        Assert.Equal(5, first.ShardsDone);
        Assert.InRange(first.Selection!.Selected, 40, 80); // K=8 for each of 10 classes, where the teacher offers enough candidates
        await Score(_tmp.Sub("w2"), workers: 2);
        await Score(_tmp.Sub("order"), order: [4, 2, 0, 3, 1]);
        Assert.Equal(Dhat(_tmp.Sub("w1")), Dhat(_tmp.Sub("w2")));
        Assert.Equal(Dhat(_tmp.Sub("w1")), Dhat(_tmp.Sub("order")));

        // A "killed" run: two score shards gone; a rerun scores only those and ends the same.
        string resumed = _tmp.Sub("resumed");
        await Score(resumed);
        var scores = Directory.GetFiles(Path.Combine(resumed, "scores"), "*.parquet").Order(StringComparer.Ordinal).ToList();
        File.Delete(scores[1]);
        File.Delete(scores[3]);
        File.Delete(Path.Combine(resumed, "selection", SelectionManifest.DhatFileName));
        var again = await Score(resumed);
        Assert.Equal(3, again.ShardsSkipped);
        Assert.Equal(2, again.ShardsDone);
        Assert.Equal(Dhat(_tmp.Sub("w1")), Dhat(resumed));

        // The stage report names every stage and a bottleneck.
        Assert.Equal(new[] { "read", "decode", "batch", "infer", "sink" }, first.Stages.Select(s => s.Stage));
        Assert.Contains(first.Bottleneck, first.Stages.Select(s => s.Stage));
        Assert.True(File.ReadAllLines(Path.Combine(_tmp.Sub("w1"), ScoreEngine.StagesFile)).Length >= 1);
    }

    [Trait(Traits.Asserts, Traits.BitIdentity)]
    [Fact]
    public async Task Kill9_TwiceDuringScore_ThenRerun_GivesTheSameDhat()
    {
        await Score(_tmp.Sub("reference"));
        string run = _tmp.Sub("killed");
        string[] args = ["score", "--teacher", Teacher, "--data", Unlabeled, "--out", run, "--top-p", "5", "--batch", "64",
            "--threads", "2", "-k", "8", "-p", "2"];
        // Two kill -9s, each as soon as one more shard is done (or whenever the process gets that far); how many landed before the end.
        async Task<int> KillTwiceAsync()
        {
            int cut = 0;
            for (int kill = 1; kill <= 2; kill++)
            {
                int before = Directory.Exists(Path.Combine(run, "scores")) ? Directory.GetFiles(Path.Combine(run, "scores"), "*.parquet").Length : 0;
                using var process = CliProcess.Start(args);
                var clock = System.Diagnostics.Stopwatch.StartNew();
                while (!process.HasExited && clock.Elapsed < TimeSpan.FromMinutes(2) &&
                       (!Directory.Exists(Path.Combine(run, "scores")) || Directory.GetFiles(Path.Combine(run, "scores"), "*.parquet").Length <= before))
                    await Task.Delay(5);
                if (!process.HasExited) process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
                if (Directory.GetFiles(Path.Combine(run, "scores"), "*.parquet").Length < 5) cut++;
            }
            return cut;
        }
        // The run is small (5 shards of 60 images) and now and then outruns both kills; then it starts over
        // from an empty folder, up to three times, so that the test checks resuming rather than the race.
        int cutShort = 0;
        for (int attempt = 1; attempt <= 3 && cutShort == 0; attempt++)
        {
            if (Directory.Exists(run)) Directory.Delete(run, recursive: true);
            cutShort = await KillTwiceAsync();
        }
        Assert.True(cutShort >= 1, "no kill landed before the run finished");
        var final = await Score(run);
        Assert.Empty(final.FailedShards);
        Assert.Equal(Dhat(_tmp.Sub("reference")), Dhat(run));
        Assert.Equal(5, Directory.GetFiles(Path.Combine(run, "scores"), "*.parquet").Length);
        Assert.Empty(Directory.GetFiles(Path.Combine(run, "scores"), "*.partial"));
    }

    [Fact]
    public async Task Select_FromStoredScores_MatchesScoreWithK_AndBatchSizeIsMeasured()
    {
        await Score(_tmp.Sub("b64"), batch: 64);
        await Score(_tmp.Sub("b7"), batch: 7, k: null);
        var m = await SelectFromScores.RunAsync(_tmp.Sub("b64"), 8, 2, _tmp.Sub("sel"));
        Assert.Equal(File.ReadAllBytes(Path.Combine(_tmp.Sub("sel"), SelectionManifest.DhatFileName)), Dhat(_tmp.Sub("b64")));
        Assert.Equal(250, m.RowsScored);

        // Scores from another batch size: the same ids and classes; probabilities within float noise.
        var a = new Dictionary<string, ScoreRow>();
        foreach (var f in Directory.GetFiles(Path.Combine(_tmp.Sub("b64"), "scores"), "*.parquet"))
            await foreach (var r in ScoreShards.ReadAsync(f)) a[r.Id] = r;
        double maxDiff = 0;
        foreach (var f in Directory.GetFiles(Path.Combine(_tmp.Sub("b7"), "scores"), "*.parquet"))
            await foreach (var r in ScoreShards.ReadAsync(f))
                for (int j = 0; j < r.Probs.Length; j++)
                    maxDiff = Math.Max(maxDiff, Math.Abs(r.Probs[j] - a[r.Id].Probs[j]));
        Assert.Equal(250, a.Count);
        Assert.True(maxDiff < 1e-4, $"max probability difference between batch 64 and batch 7: {maxDiff}");
    }

    [Fact]
    public async Task BadImages_AreQuarantined_CorruptShard_FailsAlone()
    {
        // A dataset of good images and bad ones ingested without verification, plus a shard that is not Parquet.
        string folder = _tmp.Sub("mixed-src");
        Directory.CreateDirectory(folder);
        foreach (var p in Directory.EnumerateFiles(TestPaths.Bad).Where(p => !p.EndsWith("empty.jpg")))
            File.Copy(p, Path.Combine(folder, Path.GetFileName(p)));
        foreach (var p in Directory.EnumerateFiles(Path.Combine(TestPaths.MiniFolder, "Bag")).Take(4))
            File.Copy(p, Path.Combine(folder, Path.GetFileName(p)));
        string mixed = _tmp.Sub("mixed");
        await Ingestor.RunAsync(ImageSource.Open(folder), mixed, new IngestOptions { Verify = false, Writer = new() { ShardSize = 5 } });
        var manifest = DatasetManifest.Load(mixed);
        Assert.Equal(9, manifest.Rows);
        File.WriteAllText(Path.Combine(mixed, manifest.Shards[^1].File), "this is not a parquet file");

        var result = await ScoreEngine.RunAsync(new ScoreOptions
        {
            Teacher = Teacher, Data = mixed, Out = _tmp.Sub("mixed-scores"), Scoring = new ScoringSpec { TopP = 3, Compute = new ComputeSpec { Threads = 2 } },
        });
        Assert.Single(result.FailedShards);
        Assert.Equal(manifest.Shards[^1].File, result.FailedShards[0]);
        var quarantine = File.ReadAllLines(Path.Combine(_tmp.Sub("mixed-scores"), "quarantine.jsonl"));
        Assert.Equal(5 - result.ImagesScored, quarantine.Length);
        Assert.True(quarantine.Length >= 3, string.Join("\n", quarantine));
        Assert.Contains(quarantine, q => q.Contains("random-bytes.jpg"));
    }
}
