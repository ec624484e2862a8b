using System.Text.Json;
using Streaming.Core;
using Streaming.Core.Datasets;
using Streaming.Core.Ingest;
using Streaming.Core.Loading;
using Streaming.Core.Selection;
using Streaming.Core.Shards;
using Streaming.Models.Evaluation;
using Streaming.Models.IO;
using Streaming.Core.Dataflow;
using Streaming.Models.Teachers;
using Streaming.Engine.Scoring;
using Streaming.Models.Training;
using Streaming.Models.Loading;
using Xunit;

namespace Streaming.Tests;

/// <summary>Soft targets: the teacher's top-P' probabilities of each image as the student's training target.</summary>
[Collection(nameof(ProcessState))]
public class SoftTargetTests : IAsyncLifetime
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

    [Fact]
    public void Fill_Renormalizes_TheTopP_AndFindsClassSuffixedIds()
    {
        var soft = SoftTargets.From([new ScoreRow("u1", [3, 0], [0.6f, 0.2f]), new ScoreRow("a@b", [1], [0.5f])], 4);
        var t = new float[4];
        soft.Fill("u1", t);
        Assert.Equal([0.25f, 0f, 0f, 0.75f], t);
        soft.Fill("u1@3", t); // D-hat's copy of u1 under class 3
        Assert.Equal([0.25f, 0f, 0f, 0.75f], t);
        soft.Fill("a@b", t); // an '@' in an id that is not a class suffix
        Assert.Equal([0f, 1f, 0f, 0f], t);
        Assert.Throws<StreamingException>(() => soft.Fill("u2", t));
        var bad = SoftTargets.From([new ScoreRow("x", [7], [1f])], 4);
        Assert.Contains("outside", Assert.Throws<StreamingException>(() => bad.Fill("x", t)).Message);
    }

    /// <summary>A scoring folder whose "teacher" puts <paramref name="probability"/> on class (label + shift) % 10 of every image.</summary>
    private async Task<string> Scores(string name, int shift, float probability)
    {
        string dir = _tmp.Sub(name);
        Directory.CreateDirectory(Path.Combine(dir, ScoringManifest.ScoresFolder));
        var manifest = DatasetManifest.Load(Data);
        var rows = new List<ScoreRow>();
        foreach (var shard in manifest.ShardPaths(Data))
            foreach (var (id, label) in await ImageShardReader.ReadIdsAndLabelsAsync(shard))
                rows.Add(new ScoreRow(id, [(label!.Value + shift) % 10, (label.Value + shift + 5) % 10], [probability, 1 - probability]));
        string file = ScoringManifest.ScoresFolder + "/part-00000.scores.parquet";
        await ScoreShards.WriteAsync(Path.Combine(dir, file), rows);
        var scoring = new ScoringManifest
        {
            Teacher = "test", Dataset = Data, TopP = 2, Batch = 1, Classes = manifest.Classes,
            Shards = [new ScoredShard("data", file, rows.Count, 0, Hashing.Sha256File(Path.Combine(dir, file)))],
        };
        await File.WriteAllTextAsync(Path.Combine(dir, ScoringManifest.FileName), JsonSerializer.Serialize(scoring));
        return dir;
    }

    [Fact]
    public async Task Training_FollowsTheSoftTargets_NotTheLabels()
    {
        // The "teacher" says class label+1 with 90%: a student trained on its soft targets learns the shifted classes.
        string scores = await Scores("scores", shift: 1, probability: 0.9f);
        var result = await Trainer.RunAsync(new TrainOptions
        {
            Data = Data, Arch = "cnn-small", Out = _tmp.Sub("run"), Images = 300 * 30, BatchSize = 32, BaseLr = 0.4,
            Schedule = ScheduleKind.Cosine, Seed = 3, Threads = 2, Augment = false, SoftTargets = scores,
        });
        var (model, spec) = ModelFile.Load(result.ModelPath);
        using (model)
        {
            var eval = await Evaluator.EvaluateAsync(model, spec, Data, TorchSharp.torch.CPU, 100);
            // Top-1 against the true labels: the shifted classes win, so it is far below chance...
            Assert.True(eval.Top1 < 0.2, $"top-1 against the labels {eval.Top1:P1}: the student should follow the soft targets");
            // ...and the confusion matrix puts each label's images on label+1.
            long shifted = 0, total = 0;
            for (int c = 0; c < 10; c++)
            {
                shifted += eval.Confusion[c][(c + 1) % 10];
                total += eval.Confusion[c].Sum();
            }
            Assert.True(shifted > total * 0.6, $"{shifted} of {total} images on label+1");
        }
        // The run's config records where the targets came from, and a resume must use the same.
        Assert.Contains("scores", File.ReadAllText(Path.Combine(_tmp.Sub("run"), Trainer.ConfigFile)));
    }

    [Fact]
    public async Task Scores_ThatMissImages_OrHaveOtherClasses_AreRefusedBeforeTraining()
    {
        string scores = await Scores("partial", shift: 0, probability: 1f);
        // Drop half the rows: the dataset then has images without scores.
        string file = Path.Combine(scores, ScoringManifest.ScoresFolder, "part-00000.scores.parquet");
        var rows = new List<ScoreRow>();
        await foreach (var r in ScoreShards.ReadAsync(file)) rows.Add(r);
        await ScoreShards.WriteAsync(file, rows.Take(rows.Count / 2).ToList());
        var e = await Assert.ThrowsAsync<StreamingException>(() => SoftTargets.LoadAsync(scores, Data));
        Assert.Contains("has no scores for 150", e.Message);

        string other = await Scores("other", shift: 0, probability: 1f);
        var json = File.ReadAllText(Path.Combine(other, ScoringManifest.FileName)).Replace("\"classes\":[\"", "\"classes\":[\"not-");
        File.WriteAllText(Path.Combine(other, ScoringManifest.FileName), json);
        e = await Assert.ThrowsAsync<StreamingException>(() => SoftTargets.LoadAsync(other, Data));
        Assert.Contains("classes", e.Message);
    }
}
