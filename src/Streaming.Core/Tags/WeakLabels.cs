using System.Globalization;
using System.Text.Json;
using Streaming.Core.Datasets;
using Streaming.Core.Selection;
using Streaming.Core.Shards;

namespace Streaming.Core.Tags;

/// <summary>What <see cref="WeakLabels"/> wrote and the quality of the tags.</summary>
public sealed record WeakLabelsResult(string Dataset, string Tags, TagQuality Quality, long Images);

/// <summary>
/// Weak labels as training data: W, the tagged images, and their tags in the form of a scoring folder, from either
/// <list type="bullet">
/// <item>the tags of <see cref="TagNoiseModel"/>, drawn from known labels (U's withheld labels, or a labeled set)
/// (<see cref="MakeAsync"/>), or</item>
/// <item>the dataset's own <c>tags</c> column, ingested from real weak labels (<see cref="FromColumnAsync"/>).</item>
/// </list>
/// It writes
/// <list type="bullet">
/// <item><c>w/</c>: W, the tagged images as a dataset (each labeled with its first tag, for the class counts only);</item>
/// <item><c>tags/</c>: the tags in the form of a scoring folder (each image's classes = its tags, each with probability
/// 1 / its tag count), so that <c>train --data OUT/w --soft-targets OUT/tags</c> trains with the paper's weakly
/// supervised loss: a softmax over classes, the target spread evenly over an image's tags (§3.3, after Mahajan et al.);</item>
/// <item><c>tags.json</c>: where the tags came from, and their measured precision and recall where true labels are known.</item>
/// </list>
/// </summary>
public static class WeakLabels
{
    public const string DatasetFolder = "w", TagsFolder = "tags", ReportFile = "tags.json";

    /// <summary>Tags drawn by <paramref name="model"/> from the true labels of <paramref name="dataset"/>'s images (the rest are skipped).</summary>
    public static Task<WeakLabelsResult> MakeAsync(string dataset, string output, TagNoiseModel model, CancellationToken ct = default) =>
        WriteAsync(dataset, output, $"tag-noise model, seed {model.Seed}", requireTruth: true, (r, truth, classes) => truth is int y ? model.Tags(r.Id, y, classes) : null,
            classes => new
            {
                seed = model.Seed, untagged = model.Untagged, head_recall = model.HeadRecall, zipf_exponent = model.ZipfExponent,
                wrong_tags_mean = model.WrongTagsMean, confusable = model.Confusable, confusion = model.Confusion is not null, ranks = model.Ranks(classes),
            }, ct);

    /// <summary>The dataset's own tags (its <c>tags</c> column), measured against its labels or withheld labels where it has them.</summary>
    public static Task<WeakLabelsResult> FromColumnAsync(string dataset, string output, CancellationToken ct = default)
    {
        if (!DatasetManifest.Load(dataset).HasTags)
            throw new StreamingException($"{dataset}: has no tags column (ingest weak labels with it: WebDataset .tags/.json members, a Parquet tags list, a list file's third field)");
        return WriteAsync(dataset, output, "the dataset's tags column", requireTruth: false, (r, _, _) => r.Tags, _ => new { source = "tags column" }, ct);
    }

    private static async Task<WeakLabelsResult> WriteAsync(string dataset, string output, string origin, bool requireTruth,
        Func<ImageRecord, int?, int, int[]?> tagsOf, Func<int, object> describe, CancellationToken ct)
    {
        var manifest = DatasetManifest.Load(dataset);
        int classes = manifest.Classes.Count;
        if (classes < 2) throw new StreamingException($"{dataset}: needs at least 2 classes for tags");
        Dictionary<string, int>? withheld = manifest.WithheldLabelsFile is string file
            ? await DatasetSplitter.ReadWithheldAsync(Path.Combine(dataset, file), ct).ConfigureAwait(false) : null;
        Directory.CreateDirectory(output);
        string w = Path.Combine(output, DatasetFolder), tagsDir = Path.Combine(output, TagsFolder);
        var seen = new List<(int?, int[])>();
        var scoredShards = new List<ScoredShard>();
        Directory.CreateDirectory(Path.Combine(tagsDir, ScoringManifest.ScoresFolder));
        await using (var writer = new DatasetWriter(w, DatasetWriterOptions.Like(manifest) with { Overwrite = true }))
        {
            foreach (var shard in manifest.ShardPaths(dataset))
            {
                var rows = new List<ScoreRow>();
                await foreach (var r in ImageShardReader.ReadAsync(shard, ct).ConfigureAwait(false))
                {
                    int? y = r.Label ?? (withheld is not null && withheld.TryGetValue(r.Id, out int h) && h >= 0 ? h : null);
                    if (requireTruth && y is null) continue; // no truth to derive tags from
                    var tags = tagsOf(r, y, classes) ?? [];
                    if (tags.Any(t => (uint)t >= (uint)classes))
                        throw new StreamingException($"{shard}: '{r.Id}' has tag {tags.First(t => (uint)t >= (uint)classes)}, outside the dataset's {classes} classes");
                    seen.Add((y, tags));
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
            if (requireTruth && seen.Count == 0) throw new StreamingException($"{dataset}: no image has a label or a withheld label to make tags from");
            if (scoredShards.Count == 0) throw new StreamingException($"{dataset}: no image has a tag");
            await writer.CompleteAsync(new DatasetManifest
            {
                Name = "w", Origin = $"tags of {Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(dataset)))} ({origin}); label: the first tag",
                Classes = manifest.Classes,
            }, ct).ConfigureAwait(false);
        }
        await new ScoringManifest
        {
            // The tagged images are the source dataset's (W is a subset of them).
            Teacher = origin, Dataset = Path.GetFullPath(dataset), TopP = classes, Classes = manifest.Classes, Shards = scoredShards,
        }.SaveAsync(tagsDir, ct).ConfigureAwait(false);
        var quality = TagQuality.Of(seen, classes);
        static double? Rounded(double v) => double.IsNaN(v) ? null : Math.Round(v, 4);
        var report = new
        {
            model = describe(classes),
            images = quality.Images, tagged = quality.Tagged, tags = quality.Tags, correct_tags = quality.CorrectTags,
            precision = Rounded(quality.Precision), recall = Rounded(quality.Recall),
            recall_by_class = quality.RecallByClass.Select((r, c) => new { @class = manifest.Classes[c], recall = Rounded(r) }),
        };
        AtomicFile.WriteAllText(Path.Combine(output, ReportFile), JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }) + "\n");
        return new WeakLabelsResult(w, tagsDir, quality, quality.Images);
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
        $"{r.Quality.Tagged:N0} of {r.Images:N0} images tagged, {(double)r.Quality.Tags / Math.Max(1, r.Quality.Tagged):0.00} tags each; ") +
        (double.IsNaN(r.Quality.Precision) ? "no true labels to measure their precision against"
            : string.Create(CultureInfo.InvariantCulture, $"precision {r.Quality.Precision:P1}, recall {r.Quality.Recall:P1}"));
}
