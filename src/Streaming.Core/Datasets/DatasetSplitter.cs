using Streaming.Core.Shards;

namespace Streaming.Core.Datasets;

/// <summary>Distractors added to U by <see cref="DatasetSplitter.SplitAsync"/>: <paramref name="Count"/> random crops of the photos in <paramref name="Photos"/>.</summary>
public sealed record DistractorOptions(string Photos, int Count);

/// <summary>The two datasets a split produced.</summary>
public sealed record SplitResult(DatasetManifest Labeled, DatasetManifest Unlabeled);

/// <summary>
/// Splits a labeled dataset into a class-balanced labeled subset D (N images a class) and the rest U,
/// whose shards carry no labels; U's true labels go to a side file so pseudo-label precision can be
/// measured later. Which images go to D depends only on the seed and the ids: each image is ranked by
/// a stable hash of (seed, id) and the N lowest of each class are taken, whatever the shard order.
/// </summary>
public static class DatasetSplitter
{
    public const string WithheldLabelsFileName = "withheld-labels.parquet";

    /// <summary>The withheld label of a distractor: none of the classes.</summary>
    public const int NoClass = -1;

    /// <summary><c>labeledPerClass</c> meaning every labeled image goes to D (U then comes from <c>extraUnlabeled</c>).</summary>
    public const int AllLabeled = int.MaxValue;

    /// <summary>
    /// Splits <paramref name="dataset"/> into D (<paramref name="labeledPerClass"/> images a class, chosen by a seeded
    /// hash; <see cref="AllLabeled"/>: all of them) and U (the rest, labels withheld). <paramref name="extraUnlabeled"/>
    /// (a dataset folder) joins U whole: the paper's setting, where U is a separate collection. Distractors, if
    /// asked, join U last.
    /// </summary>
    public static async Task<SplitResult> SplitAsync(string dataset, int labeledPerClass, ulong seed, string labeledOut, string unlabeledOut,
        DatasetWriterOptions? writerOptions = null, CancellationToken cancellationToken = default, DistractorOptions? distractors = null,
        string? extraUnlabeled = null, bool keepLabels = false)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(labeledPerClass, 0);
        if (keepLabels && (extraUnlabeled is not null || distractors is not null))
            throw new StreamingException("a split that keeps the rest's labels (a held-out set) takes no separate unlabeled collection or distractors");
        var manifest = DatasetManifest.Load(dataset);
        if (manifest.Labeled == 0) throw new StreamingException($"{dataset}: has no labels, so there is nothing to split into a labeled set");
        if (Path.GetFullPath(labeledOut) == Path.GetFullPath(unlabeledOut))
            throw new StreamingException("--labeled and --unlabeled must be different folders");

        // Pass 1: ids and labels only; keep the N lowest-ranked ids of each class.
        var chosen = new SortedSet<(ulong Rank, string Id)>[manifest.Classes.Count];
        for (int c = 0; c < chosen.Length; c++) chosen[c] = new SortedSet<(ulong, string)>(RankComparer.Instance);
        // With a separate collection for U, every id here is noted too: the collection must not reuse one.
        var taken = extraUnlabeled is null ? null : new HashSet<string>(StringComparer.Ordinal);
        foreach (var shard in manifest.ShardPaths(dataset))
        {
            foreach (var (id, label) in await ImageShardReader.ReadIdsAndLabelsAsync(shard, cancellationToken).ConfigureAwait(false))
            {
                taken?.Add(id);
                if (label is not int y) continue;
                if (y < 0 || y >= chosen.Length) throw new StreamingException($"{shard}: label {y} of '{id}' is outside the manifest's {chosen.Length} classes");
                var set = chosen[y];
                var key = (StableHash.Of(id, seed), id);
                if (set.Count < labeledPerClass) set.Add(key);
                else if (labeledPerClass > 0 && RankComparer.Instance.Compare(key, set.Max) < 0)
                {
                    set.Remove(set.Max);
                    set.Add(key);
                }
            }
        }
        for (int c = 0; c < chosen.Length && labeledPerClass != AllLabeled; c++)
            if (chosen[c].Count < labeledPerClass)
                throw new StreamingException($"{dataset}: class '{manifest.Classes[c]}' has {chosen[c].Count} labeled images, fewer than --labeled-per-class {labeledPerClass}");
        var inD = new HashSet<string>(chosen.SelectMany(s => s.Select(k => k.Id)), StringComparer.Ordinal);

        // Pass 2: stream every record to D or U, in the parent's order.
        // D and U keep a tags column when the dataset (or the separate collection) has one.
        bool tags = manifest.HasTags || (extraUnlabeled is not null && DatasetManifest.Load(extraUnlabeled).HasTags);
        writerOptions = (writerOptions ?? DatasetWriterOptions.Like(manifest)) with { Tags = tags };
        await using var d = new DatasetWriter(labeledOut, writerOptions);
        await using var u = new DatasetWriter(unlabeledOut, writerOptions);
        var withheldIds = new List<string>();
        var withheldLabels = new List<int>();
        foreach (var shard in manifest.ShardPaths(dataset))
        {
            await foreach (var record in ImageShardReader.ReadAsync(shard, cancellationToken).ConfigureAwait(false))
            {
                if (inD.Contains(record.Id))
                {
                    await d.AddAsync(record, cancellationToken).ConfigureAwait(false);
                }
                else if (keepLabels)
                {
                    await u.AddAsync(record, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    if (record.Label is int y)
                    {
                        withheldIds.Add(record.Id);
                        withheldLabels.Add(y);
                    }
                    await u.AddAsync(record with { Label = null }, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        if (extraUnlabeled is not null)
        {
            // Every image of the other collection joins U; an id it shares with the split dataset would make two images one.
            var extra = DatasetManifest.Load(extraUnlabeled);
            // Its labels, if it has any, are withheld like U's own when they name the same classes, else as "no class".
            bool sameClasses = extra.Classes.SequenceEqual(manifest.Classes);
            foreach (var shard in extra.ShardPaths(extraUnlabeled))
                await foreach (var record in ImageShardReader.ReadAsync(shard, cancellationToken).ConfigureAwait(false))
                {
                    if (taken!.Contains(record.Id))
                        throw new StreamingException($"{extraUnlabeled}: image id '{record.Id}' is also in {dataset}; give the unlabeled collection distinct ids (ingest it with --id-prefix)");
                    if (record.Label is int y)
                    {
                        withheldIds.Add(record.Id);
                        withheldLabels.Add(sameClasses ? y : NoClass);
                    }
                    // Tags name the collection's own classes: kept only when they are the dataset's.
                    await u.AddAsync(record with { Label = null, Tags = sameClasses ? record.Tags : null }, cancellationToken).ConfigureAwait(false);
                }
        }
        string? distractorManifest = null;
        if (distractors is not null)
        {
            // Crops at the images' own size and channels, after U's own images; their withheld label is "no class".
            var (width, height, channels) = await manifest.FirstImageAsync(dataset, labeledOnly: false, cancellationToken).ConfigureAwait(false);
            if (width != height) throw new StreamingException($"{dataset}: distractors are square crops, but the images are {width}x{height}");
            string crops = Path.Combine(u.TempPath, "distractors.tmp");
            try
            {
                await Distractors.CropAsync(distractors.Photos, distractors.Count, width, channels, seed, crops, cancellationToken).ConfigureAwait(false);
                distractorManifest = Hashing.Sha256File(Path.Combine(crops, DatasetManifest.FileName));
                var cropManifest = DatasetManifest.Load(crops);
                foreach (var shard in cropManifest.ShardPaths(crops))
                    await foreach (var record in ImageShardReader.ReadAsync(shard, cancellationToken).ConfigureAwait(false))
                    {
                        withheldIds.Add(record.Id);
                        withheldLabels.Add(NoClass);
                        await u.AddAsync(record, cancellationToken).ConfigureAwait(false);
                    }
            }
            finally
            {
                if (Directory.Exists(crops)) Directory.Delete(crops, true);
            }
        }
        if (!keepLabels) await WriteWithheldAsync(Path.Combine(u.TempPath, WithheldLabelsFileName), withheldIds, withheldLabels, cancellationToken).ConfigureAwait(false);

        var parameters = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["parent"] = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(dataset))),
            ["parent_manifest_sha256"] = Hashing.Sha256File(Path.Combine(dataset, DatasetManifest.FileName)),
            ["labeled_per_class"] = labeledPerClass == AllLabeled ? "all" : labeledPerClass.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["seed"] = seed.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        if (keepLabels) parameters["rest"] = "labeled (a held-out set)";
        if (extraUnlabeled is not null)
        {
            parameters["unlabeled_source"] = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(extraUnlabeled)));
            parameters["unlabeled_source_manifest_sha256"] = Hashing.Sha256File(Path.Combine(extraUnlabeled, DatasetManifest.FileName));
        }
        if (distractors is not null)
        {
            parameters["distractors"] = distractors.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);
            parameters["distractors_manifest_sha256"] = distractorManifest!;
        }
        var common = new DatasetManifest { Classes = manifest.Classes, Verified = manifest.Verified, Parameters = parameters };
        var labeled = await d.CompleteAsync(common with { Origin = "split labeled" }, cancellationToken).ConfigureAwait(false);
        var unlabeled = await u.CompleteAsync(keepLabels ? common with { Origin = "split held out (labeled)" }
            : common with { Origin = "split unlabeled", WithheldLabelsFile = WithheldLabelsFileName }, cancellationToken).ConfigureAwait(false);
        return new SplitResult(labeled, unlabeled);
    }

    private static async Task WriteWithheldAsync(string path, List<string> ids, List<int> labels, CancellationToken cancellationToken)
    {
        var idColumn = ParquetColumn.Required<string>("id");
        var labelColumn = ParquetColumn.Required<int>("label");
        await using var stream = File.Create(path);
        await using var writer = await ParquetFileWriter.CreateAsync([idColumn, labelColumn], stream, ShardCompression.Snappy, cancellationToken).ConfigureAwait(false);
        using var rg = writer.CreateRowGroup();
        await rg.WriteAsync(idColumn, ids).ConfigureAwait(false);
        await rg.WriteAsync<int>(labelColumn, labels.ToArray().AsMemory(), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Reads a withheld-labels side file back as id -> label.</summary>
    public static async Task<Dictionary<string, int>> ReadWithheldAsync(string path, CancellationToken cancellationToken = default)
    {
        var result = new Dictionary<string, int>(StringComparer.Ordinal);
        await using var reader = await ParquetFileReader.OpenAsync(path, 4096, cancellationToken).ConfigureAwait(false);
        var columns = reader.Columns;
        for (int g = 0; g < reader.RowGroupCount; g++)
        {
            using var rg = reader.OpenRowGroup(g);
            int n = checked((int)rg.RowCount);
            var ids = new string?[n];
            var labels = new int[n];
            await rg.ReadAsync(columns[0], ids.AsMemory(), cancellationToken).ConfigureAwait(false);
            await rg.ReadAsync<int>(columns[1], labels.AsMemory(), cancellationToken).ConfigureAwait(false);
            for (int i = 0; i < n; i++) result[ids[i]!] = labels[i];
        }
        return result;
    }

    private sealed class RankComparer : IComparer<(ulong Rank, string Id)>
    {
        public static readonly RankComparer Instance = new();
        public int Compare((ulong Rank, string Id) x, (ulong Rank, string Id) y)
        {
            int c = x.Rank.CompareTo(y.Rank);
            return c != 0 ? c : string.CompareOrdinal(x.Id, y.Id);
        }
    }
}
