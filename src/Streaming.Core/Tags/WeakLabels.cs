using System.Globalization;
using System.Text.Json;
using Streaming.Core.Datasets;
using Streaming.Core.Selection;
using Streaming.Core.Shards;

namespace Streaming.Core.Tags;

/// <summary>What <see cref="WeakLabels.MakeAsync"/> wrote and the quality of the tags.</summary>
public sealed record WeakLabelsResult(string Dataset, string Tags, TagNoiseModel.Quality Quality, long Images);

/// <summary>
/// Weak labels for a dataset whose true labels are known (U's withheld labels, or a labeled set): the tags of
/// <see cref="TagNoiseModel"/>, written as
/// <list type="bullet">
/// <item><c>w/</c>: W, the tagged images as a dataset (each labeled with its first tag, for the class counts only);</item>
/// <item><c>tags/</c>: the tags in the form of a scoring folder (each image's classes = its tags, each with probability
/// 1 / its tag count), so that <c>train --data OUT/w --soft-targets OUT/tags</c> trains with the paper's weakly
/// supervised loss: a softmax over classes, the target spread evenly over an image's tags (§3.3, after Mahajan et al.);</item>
/// <item><c>tags.json</c>: the model's parameters and the tags' measured precision and recall.</item>
/// </list>
/// </summary>
public static class WeakLabels
{
    public const string DatasetFolder = "w", TagsFolder = "tags", ReportFile = "tags.json";

    public static async Task<WeakLabelsResult> MakeAsync(string dataset, string output, TagNoiseModel model, CancellationToken ct = default)
    {
        var manifest = DatasetManifest.Load(dataset);
        int classes = manifest.Classes.Count;
        if (classes < 2) throw new StreamingException($"{dataset}: needs at least 2 classes for tags");
        Dictionary<string, int>? withheld = manifest.WithheldLabelsFile is string file
            ? await DatasetSplitter.ReadWithheldAsync(Path.Combine(dataset, file), ct).ConfigureAwait(false) : null;
        Directory.CreateDirectory(output);
        string w = Path.Combine(output, DatasetFolder), tagsDir = Path.Combine(output, TagsFolder);
        var truth = new List<(string, int)>();
        var scoredShards = new List<ScoredShard>();
        Directory.CreateDirectory(Path.Combine(tagsDir, ScoringManifest.ScoresFolder));
        await using (var writer = new DatasetWriter(w, new DatasetWriterOptions { Overwrite = true, ShardSize = manifest.ShardSize > 0 ? manifest.ShardSize : DatasetWriterOptions.DefaultShardSize }))
        {
            foreach (var shard in manifest.ShardPaths(dataset))
            {
                var rows = new List<ScoreRow>();
                await foreach (var r in ImageShardReader.ReadAsync(shard, ct).ConfigureAwait(false))
                {
                    int? y = r.Label ?? (withheld is not null && withheld.TryGetValue(r.Id, out int h) ? h : null);
                    if (y is not int label) continue; // no truth to derive tags from
                    truth.Add((r.Id, label));
                    var tags = model.Tags(r.Id, label, classes);
                    if (tags.Length == 0) continue;
                    await writer.AddAsync(r with { Label = tags[0] }, ct).ConfigureAwait(false);
                    float share = 1f / tags.Length;
                    rows.Add(new ScoreRow(r.Id, tags, [.. tags.Select(_ => share)]));
                }
                if (rows.Count == 0) continue;
                string name = ScoringManifest.ScoreFileName(shard);
                string sha = await ScoreShards.WriteAsync(Path.Combine(tagsDir, ScoringManifest.ScoresFolder, name), rows, cancellationToken: ct).ConfigureAwait(false);
                scoredShards.Add(new ScoredShard(Path.GetFileName(shard), ScoringManifest.ScoresFolder + "/" + name, rows.Count, 0, sha));
            }
            if (truth.Count == 0) throw new StreamingException($"{dataset}: no image has a label or a withheld label to make tags from");
            await writer.CompleteAsync(new DatasetManifest
            {
                Name = "w", Origin = $"tags of {Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(dataset)))} (tag-noise model, seed {model.Seed}); label: the first tag",
                Classes = manifest.Classes,
            }, ct).ConfigureAwait(false);
        }
        await new ScoringManifest
        {
            Teacher = "tag-noise model", Dataset = Path.GetFullPath(w), TopP = classes, Classes = manifest.Classes, Shards = scoredShards,
        }.SaveAsync(tagsDir, ct).ConfigureAwait(false);
        var quality = model.Measure(truth, classes);
        var report = new
        {
            model = new { seed = model.Seed, untagged = model.Untagged, head_recall = model.HeadRecall, zipf_exponent = model.ZipfExponent,
                wrong_tags_mean = model.WrongTagsMean, confusable = model.Confusable, confusion = model.Confusion is not null, ranks = model.Ranks(classes) },
            images = quality.Images, tagged = quality.Tagged, tags = quality.Tags, correct_tags = quality.CorrectTags,
            precision = Math.Round(quality.Precision, 4), recall = Math.Round(quality.Recall, 4),
            recall_by_class = quality.RecallByClass.Select((r, c) => new { @class = manifest.Classes[c], recall = Math.Round(r, 4) }),
        };
        AtomicFile.WriteAllText(Path.Combine(output, ReportFile), JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }) + "\n");
        return new WeakLabelsResult(w, tagsDir, quality, truth.Count);
    }

    /// <summary>The confusion matrix of an evaluation report (<c>streaming eval --out</c>, or a pipeline stage's eval-test.json).</summary>
    public static IReadOnlyList<IReadOnlyList<double>> ReadConfusion(string evalJson)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(evalJson));
            return [.. doc.RootElement.GetProperty("confusion").EnumerateArray().Select(row => (IReadOnlyList<double>)[.. row.EnumerateArray().Select(v => v.GetDouble())])];
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or IOException)
        {
            throw new StreamingException($"{evalJson}: not an evaluation report with a confusion matrix ({e.Message})");
        }
    }

    public static string Describe(WeakLabelsResult r) => string.Create(CultureInfo.InvariantCulture,
        $"{r.Quality.Tagged:N0} of {r.Images:N0} images tagged, {(double)r.Quality.Tags / Math.Max(1, r.Quality.Tagged):0.00} tags each; precision {r.Quality.Precision:P1}, recall {r.Quality.Recall:P1}");
}
