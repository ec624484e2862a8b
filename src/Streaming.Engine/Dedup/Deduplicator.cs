using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using SkiaSharp;
using Streaming.Core;
using Streaming.Core.Datasets;
using Streaming.Core.Dedup;
using Streaming.Core.Plots;
using Streaming.Core.Shards;
using Streaming.Models;
using Streaming.Models.Evaluation;
using Streaming.Models.IO;

namespace Streaming.Engine.Dedup;

/// <summary>What <c>streaming dedup</c> compares and how close counts as a duplicate.</summary>
public sealed record DedupOptions
{
    /// <summary>The dataset to clean (U).</summary>
    public required string Data { get; init; }
    /// <summary>The datasets U must not overlap (the evaluation sets), each a folder.</summary>
    public required IReadOnlyList<string> Against { get; init; }
    public required string Out { get; init; }
    /// <summary>A model whose penultimate features find near-duplicates by cosine; null: hashes only.</summary>
    public string? Model { get; init; }
    /// <summary>The largest dHash Hamming distance (of 256 bits) at which an image is a candidate perceptual near-duplicate.</summary>
    public int MaxHamming { get; init; } = DefaultMaxHamming;
    /// <summary>The largest RMS (levels of 255) between a candidate's 17 x 16 luma cells and the image's that counts as a perceptual near-duplicate.</summary>
    public double MaxCellRms { get; init; } = DefaultMaxCellRms;
    /// <summary>The smallest cosine of penultimate features that counts as an embedding near-duplicate.</summary>
    public double MinCosine { get; init; } = DefaultMinCosine;
    public int Threads { get; init; } = Environment.ProcessorCount;
    public string Device { get; init; } = "auto";
    public int BatchSize { get; init; } = 512;
    /// <summary>Pairs drawn on the contact sheet for each kind.</summary>
    public int SheetPairs { get; init; } = 16;

    /// <summary>
    /// The defaults, chosen from precision and recall against an exact pixel search on Fashion-MNIST, train against test
    /// (perf/dedup-truth.sh; docs/results.md): the dHash alone cannot separate copies from look-alikes at any threshold
    /// (at 2 bits it found 6 of 23 copies within RMS 10, with 55% of its pairs farther than RMS 25), while candidates within
    /// 40 bits checked by their cells at RMS 10 found all 23, every pair within RMS 25.
    /// </summary>
    public const int DefaultMaxHamming = 40;
    public const double DefaultMaxCellRms = 10;
    public const double DefaultMinCosine = 0.999;
}

/// <summary>One image of U and the image it duplicates, with how it was found and how far apart they are (the 17 x 16 cells' RMS in levels of 255, or 1 - cosine; 0 when exact).</summary>
public sealed record DuplicatePair(string Id, string AgainstId, string Against, string Kind, double Distance);

/// <summary>The outcome by kind, as <c>summary.json</c> holds it.</summary>
public sealed record DedupSummary
{
    [JsonPropertyName("data")] public required string Data { get; init; }
    /// <summary>The engine that wrote it (commit, dirty).</summary>
    [JsonPropertyName("engine")] public EngineBuild Engine { get; init; } = BuildInfo.Current;
    [JsonPropertyName("images")] public long Images { get; init; }
    [JsonPropertyName("against")] public required IReadOnlyList<AgainstSet> Against { get; init; }
    [JsonPropertyName("kinds")] public required IReadOnlyDictionary<string, long> Kinds { get; init; }
    [JsonPropertyName("duplicates")] public long Duplicates { get; init; }
    [JsonPropertyName("max_hamming")] public int MaxHamming { get; init; }
    [JsonPropertyName("max_cell_rms")] public double MaxCellRms { get; init; }
    [JsonPropertyName("min_cosine")] public double? MinCosine { get; init; }
    [JsonPropertyName("model")] public string? Model { get; init; }
    [JsonPropertyName("unreadable")] public long Unreadable { get; init; }
    [JsonPropertyName("hash_seconds")] public double HashSeconds { get; init; }
    [JsonPropertyName("hash_images_per_second")] public double HashImagesPerSecond { get; init; }
    [JsonPropertyName("features_seconds")] public double? FeaturesSeconds { get; init; }
    [JsonPropertyName("search_seconds")] public double SearchSeconds { get; init; }
    [JsonPropertyName("seconds")] public double Seconds { get; init; }
    /// <summary>For each U image, the Hamming distance of its nearest dHash in the evaluation sets (how many at 0, 1, ... 256).</summary>
    [JsonPropertyName("nearest_hamming_histogram")] public required long[] NearestHammingHistogram { get; init; }
    /// <summary>
    /// For each U image with a candidate (a dHash within <see cref="MaxHamming"/>), the RMS of its nearest candidate's cells, in
    /// bins of 1 level from 0 (the last bin: 50 and more).
    /// </summary>
    [JsonPropertyName("nearest_cell_rms_histogram")] public long[]? NearestCellRmsHistogram { get; init; }
    /// <summary>For each U image, the (centred) cosine of its nearest embedding, in bins of 0.001 from 0.95 up (below 0.95 in the first).</summary>
    [JsonPropertyName("nearest_cosine_histogram")] public long[]? NearestCosineHistogram { get; init; }
}

public sealed record AgainstSet([property: JsonPropertyName("name")] string Name, [property: JsonPropertyName("path")] string Path, [property: JsonPropertyName("images")] long Images);

/// <summary>
/// Finds the images of U that duplicate an image of an evaluation set (the paper's Supp. §5: the unlabeled data must not
/// hold the test images), by three means, the strongest first:
/// <list type="bullet">
/// <item><c>exact_bytes</c>: the same file (SHA-256 of its bytes);</item>
/// <item><c>exact_pixels</c>: the same picture in another file (SHA-256 of the decoded pixels and their size);</item>
/// <item><c>perceptual</c>: a dHash within <see cref="DedupOptions.MaxHamming"/> bits whose 17 x 16 luma cells are within
/// <see cref="DedupOptions.MaxCellRms"/> (resized, recompressed, a little edited); the distance reported is the cells' RMS;</item>
/// <item><c>embedding</c>: penultimate features of a model within <see cref="DedupOptions.MinCosine"/> (the paper used
/// embeddings and Faiss; here a brute-force matrix product, exact).</item>
/// </list>
/// Each image of U is reported once, under the strongest kind that matched, with its nearest image of that kind.
/// Writes <c>duplicates.parquet</c>, <c>duplicates.png</c> (a contact sheet of pairs) and <c>summary.json</c>.
/// </summary>
public static class Deduplicator
{
    public const string DuplicatesFile = "duplicates.parquet", SheetFile = "duplicates.png", SummaryFile = "summary.json";
    public static readonly string[] Kinds = ["exact_bytes", "exact_pixels", "perceptual", "embedding"];

    private sealed record Hashed(string[] Ids, ImageHash[] Hashes, bool[] Decoded);

    public static async Task<(DedupSummary Summary, IReadOnlyList<DuplicatePair> Pairs)> RunAsync(DedupOptions o, Action<string>? log = null,
        IProgress<string>? progress = null, CancellationToken cancellationToken = default)
    {
        log ??= _ => { };
        if (o.Against.Count == 0) throw new StreamingException("dedup: give at least one --against dataset");
        if (o.MaxHamming is < 0 or > ImageHash.Bits) throw new StreamingException($"dedup: --max-hamming {o.MaxHamming} must be 0 to {ImageHash.Bits}");
        if (!(o.MaxCellRms >= 0)) throw new StreamingException($"dedup: --max-cell-rms {o.MaxCellRms} must be 0 or more (levels of 255)");
        var clock = Stopwatch.StartNew();
        Directory.CreateDirectory(o.Out);
        var names = AgainstNames(o.Against);

        // 1. Hashes of every image, U and the evaluation sets.
        var hashClock = Stopwatch.StartNew();
        var u = await HashAsync(o.Data, o.Threads, progress, cancellationToken).ConfigureAwait(false);
        var against = new List<Hashed>();
        foreach (var a in o.Against) against.Add(await HashAsync(a, o.Threads, progress, cancellationToken).ConfigureAwait(false));
        hashClock.Stop();
        long hashed = u.Ids.Length + against.Sum(a => a.Ids.Length);
        log(string.Create(CultureInfo.InvariantCulture, $"hashed {hashed:N0} images in {hashClock.Elapsed.TotalSeconds:F1} s ({hashed / Math.Max(1e-9, hashClock.Elapsed.TotalSeconds):N0} images/s, {o.Threads} threads)"));

        // 2. Exact matches, then the nearest dHash; 3. with a model, the nearest embedding.
        var searchClock = Stopwatch.StartNew();
        var found = ExactMatches(u, against, names);
        var (histogram, cellHistogram) = PerceptualMatches(u, against, names, found, o, cancellationToken);
        searchClock.Stop();
        (double Seconds, long[] Histogram)? embedding = o.Model is null ? null : await EmbeddingMatchesAsync(o, u, names, found, searchClock, log, progress, cancellationToken).ConfigureAwait(false);

        var pairs = found.Where(p => p is not null).Select(p => p!).ToList();
        await WritePairsAsync(Path.Combine(o.Out, DuplicatesFile), pairs, cancellationToken).ConfigureAwait(false);
        await DrawSheetAsync(o, pairs, Path.Combine(o.Out, SheetFile), cancellationToken).ConfigureAwait(false);
        var summary = new DedupSummary
        {
            Data = Path.GetFullPath(o.Data),
            Images = u.Ids.Length,
            Against = o.Against.Select((a, s) => new AgainstSet(names[s], Path.GetFullPath(a), against[s].Ids.Length)).ToList(),
            Kinds = Kinds.Where(k => k != "embedding" || o.Model is not null).ToDictionary(k => k, k => (long)pairs.Count(p => p.Kind == k)),
            Duplicates = pairs.Count,
            MaxHamming = o.MaxHamming,
            MaxCellRms = o.MaxCellRms,
            MinCosine = o.Model is null ? null : o.MinCosine,
            Model = o.Model is null ? null : Path.GetFullPath(o.Model),
            Unreadable = u.Decoded.Count(d => !d) + against.Sum(a => a.Decoded.Count(d => !d)),
            HashSeconds = Math.Round(hashClock.Elapsed.TotalSeconds, 2),
            HashImagesPerSecond = Math.Round(hashed / Math.Max(1e-9, hashClock.Elapsed.TotalSeconds)),
            FeaturesSeconds = embedding?.Seconds is double f ? Math.Round(f, 2) : null,
            SearchSeconds = Math.Round(searchClock.Elapsed.TotalSeconds, 2),
            Seconds = Math.Round(clock.Elapsed.TotalSeconds, 2),
            NearestHammingHistogram = histogram,
            NearestCellRmsHistogram = cellHistogram,
            NearestCosineHistogram = embedding?.Histogram,
        };
        AtomicFile.WriteAllText(Path.Combine(o.Out, SummaryFile), JsonSerializer.Serialize(summary, new JsonSerializerOptions { WriteIndented = true }) + "\n");
        return (summary, pairs);
    }

    /// <summary>U's images whose bytes, or else decoded pixels, are those of an image of an against-set (the first such).</summary>
    private static DuplicatePair?[] ExactMatches(Hashed u, List<Hashed> against, string[] names)
    {
        var found = new DuplicatePair?[u.Ids.Length];
        var byBytes = new Dictionary<UInt128, (int Set, int Index)>();
        var byPixels = new Dictionary<UInt128, (int Set, int Index)>();
        for (int s = 0; s < against.Count; s++)
            for (int i = 0; i < against[s].Ids.Length; i++)
            {
                byBytes.TryAdd(against[s].Hashes[i].BytesSha, (s, i));
                if (against[s].Decoded[i]) byPixels.TryAdd(against[s].Hashes[i].PixelsSha, (s, i));
            }
        for (int i = 0; i < u.Ids.Length; i++)
        {
            if (byBytes.TryGetValue(u.Hashes[i].BytesSha, out var m)) found[i] = new DuplicatePair(u.Ids[i], against[m.Set].Ids[m.Index], names[m.Set], "exact_bytes", 0);
            else if (u.Decoded[i] && byPixels.TryGetValue(u.Hashes[i].PixelsSha, out m)) found[i] = new DuplicatePair(u.Ids[i], against[m.Set].Ids[m.Index], names[m.Set], "exact_pixels", 0);
        }
        return found;
    }

    /// <summary>
    /// Each of U's images against every decoded image of the against-sets (a brute-force scan, in parallel): its nearest dHash,
    /// and among the candidates within <see cref="DedupOptions.MaxHamming"/> bits the one whose cells are nearest. Those within
    /// <see cref="DedupOptions.MaxCellRms"/> not yet matched are perceptual duplicates. Returns the histograms of both nearest
    /// distances.
    /// </summary>
    private static (long[] Hamming, long[] CellRms) PerceptualMatches(Hashed u, List<Hashed> against, string[] names, DuplicatePair?[] found, DedupOptions o,
        CancellationToken cancellationToken)
    {
        var histogram = new long[ImageHash.Bits + 1];
        var cellHistogram = new long[51];
        var all = against.SelectMany((a, s) => Enumerable.Range(0, a.Ids.Length).Where(i => a.Decoded[i]).Select(i => (s, i))).ToArray();
        // Apart, so that the scan over the hashes stays in cache: the cells are read only for candidates.
        var dhashes = all.Select(x => against[x.s].Hashes[x.i].DHash).ToArray();
        var cells = all.Select(x => against[x.s].Hashes[x.i].Cells).ToArray();
        var nearest = new Nearest[u.Ids.Length];
        Parallel.For(0, u.Ids.Length, new ParallelOptions { MaxDegreeOfParallelism = o.Threads, CancellationToken = cancellationToken }, i =>
            nearest[i] = u.Decoded[i] && dhashes.Length > 0 ? Scan(u.Hashes[i], dhashes, cells, o.MaxHamming) : new Nearest(ImageHash.Bits + 1, double.NaN, -1));
        for (int i = 0; i < u.Ids.Length; i++)
        {
            var n = nearest[i];
            if (n.Hamming > ImageHash.Bits) continue;
            histogram[n.Hamming]++;
            if (n.At < 0) continue;
            cellHistogram[Math.Min(50, (int)n.CellRms)]++;
            if (found[i] is null && n.CellRms <= o.MaxCellRms)
            {
                var (s, j) = all[n.At];
                found[i] = new DuplicatePair(u.Ids[i], against[s].Ids[j], names[s], "perceptual", Math.Round(n.CellRms, 3));
            }
        }
        return (histogram, cellHistogram);
    }

    /// <summary>An image's nearest dHash distance, and its nearest candidate by cells (At: -1 when no dHash lies within the bound).</summary>
    private readonly record struct Nearest(int Hamming, double CellRms, int At);

    private static Nearest Scan(in ImageHash h, DHash256[] dhashes, LumaCells[] cells, int maxHamming)
    {
        int nearestHamming = ImageHash.Bits + 1, at = -1;
        double bestRms = double.PositiveInfinity;
        var dhash = h.DHash;
        for (int j = 0; j < dhashes.Length; j++)
        {
            int d = ImageHash.Distance(dhash, dhashes[j]);
            if (d < nearestHamming) nearestHamming = d;
            if (d > maxHamming) continue;
            double rms = LumaCells.Rms(h.Cells, cells[j]);
            if (rms < bestRms)
            {
                bestRms = rms;
                at = j;
            }
        }
        return new Nearest(nearestHamming, at < 0 ? double.NaN : bestRms, at);
    }

    /// <summary>The model's penultimate features of every image, nearest by cosine; those at or above <see cref="DedupOptions.MinCosine"/> not yet matched are embedding duplicates.</summary>
    private static async Task<(double Seconds, long[] Histogram)> EmbeddingMatchesAsync(DedupOptions o, Hashed u, string[] names, DuplicatePair?[] found,
        Stopwatch searchClock, Action<string> log, IProgress<string>? progress, CancellationToken cancellationToken)
    {
        var featureClock = Stopwatch.StartNew();
        var device = TorchDevice.Resolve(o.Device);
        var (net, spec) = ModelFile.Load(o.Model!, null, device);
        FeatureSet uf;
        var af = new List<FeatureSet>();
        using (net)
        {
            uf = await Features(o.Data).ConfigureAwait(false);
            foreach (var a in o.Against) af.Add(await Features(a).ConfigureAwait(false));
        }
        featureClock.Stop();
        log(string.Create(CultureInfo.InvariantCulture, $"features of {uf.Count + af.Sum(f => f.Count):N0} images ({uf.Dim} values each, {spec.Arch}) in {featureClock.Elapsed.TotalSeconds:F1} s"));
        searchClock.Start();
        var (best, cosine) = EmbeddingSearch.Nearest(uf, Concat(af), device);
        searchClock.Stop();
        if (!uf.Ids.SequenceEqual(u.Ids)) throw new StreamingException($"{o.Data}: features and hashes read the images in other orders");
        var histogram = new long[51];
        var owner = af.SelectMany((f, s) => Enumerable.Range(0, f.Count).Select(i => (s, i))).ToArray();
        for (int i = 0; i < uf.Count; i++)
        {
            if (best[i] < 0) continue;
            histogram[Math.Clamp((int)Math.Floor((cosine[i] - 0.95) / 0.001) + 1, 0, 50)]++;
            if (found[i] is null && cosine[i] >= o.MinCosine)
            {
                var (s, j) = owner[best[i]];
                found[i] = new DuplicatePair(u.Ids[i], af[s].Ids[j], names[s], "embedding", Math.Round(1 - cosine[i], 6));
            }
        }
        return (featureClock.Elapsed.TotalSeconds, histogram);

        async Task<FeatureSet> Features(string dataset) =>
            await FeatureExtractor.ExtractAsync(net, spec, dataset, device, o.BatchSize, decodeWorkers: 1,
                progress is null ? null : new Progress<(long Done, long Total)>(p => progress.Report($"features of {Path.GetFileName(dataset)}: {p.Done:N0} of {p.Total:N0}")),
                cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Copies <paramref name="dataset"/> to <paramref name="output"/> without the images whose ids are in
    /// <paramref name="remove"/>, in the same order, with its class names, shard size and withheld labels (which still
    /// name the removed images: they are never looked up). Returns the new manifest.
    /// </summary>
    public static async Task<DatasetManifest> RemoveAsync(string dataset, IReadOnlySet<string> remove, string output, CancellationToken ct = default)
    {
        var manifest = DatasetManifest.Load(dataset);
        await using var writer = new DatasetWriter(output, DatasetWriterOptions.Like(manifest));
        foreach (var shard in manifest.ShardPaths(dataset))
            await foreach (var r in ImageShardReader.ReadAsync(shard, ct).ConfigureAwait(false))
                if (!remove.Contains(r.Id)) await writer.AddAsync(r, ct).ConfigureAwait(false);
        if (manifest.WithheldLabelsFile is string withheld)
            File.Copy(Path.Combine(dataset, withheld), Path.Combine(writer.TempPath, withheld));
        var parameters = new SortedDictionary<string, string>(manifest.Parameters.ToDictionary(), StringComparer.Ordinal)
        {
            ["dedup_removed"] = remove.Count.ToString(CultureInfo.InvariantCulture),
        };
        return await writer.CompleteAsync(new DatasetManifest
        {
            Name = manifest.Name, Origin = manifest.Origin + ", duplicates of the test set removed", Classes = manifest.Classes,
            WithheldLabelsFile = manifest.WithheldLabelsFile, Parameters = parameters,
        }, ct).ConfigureAwait(false);
    }

    /// <summary>Each evaluation set's name: its folder's name, made unique with its position when two share one.</summary>
    private static string[] AgainstNames(IReadOnlyList<string> against)
    {
        var names = against.Select(a => Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(a)))).ToArray();
        for (int i = 0; i < names.Length; i++)
            if (names.Count(n => n == names[i]) > 1) names[i] = $"{names[i]}#{i + 1}";
        return names;
    }

    private static FeatureSet Concat(IReadOnlyList<FeatureSet> sets) =>
        sets.Count == 1 ? sets[0] : new FeatureSet([.. sets.SelectMany(s => s.Ids)], [.. sets.SelectMany(s => s.Labels)], [.. sets.SelectMany(s => s.Values)], sets[0].Dim);

    /// <summary>Every image's hashes, in the dataset's order, shard by shard, the images of a shard over <paramref name="threads"/> threads.</summary>
    private static async Task<Hashed> HashAsync(string dataset, int threads, IProgress<string>? progress, CancellationToken ct)
    {
        var manifest = DatasetManifest.Load(dataset);
        var ids = new List<string>((int)manifest.Rows);
        var hashes = new List<ImageHash>((int)manifest.Rows);
        var decoded = new List<bool>((int)manifest.Rows);
        var options = new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, threads), CancellationToken = ct };
        // The next shard is read while this one is hashed: reading (Parquet, decompression) is serial, hashing parallel.
        static async Task<List<ImageRecord>> Read(string shard, CancellationToken ct)
        {
            var records = new List<ImageRecord>();
            await foreach (var r in ImageShardReader.ReadAsync(shard, ct).ConfigureAwait(false)) records.Add(r);
            return records;
        }
        var shards = manifest.ShardPaths(dataset).ToList();
        Task<List<ImageRecord>>? next = shards.Count > 0 ? Task.Run(() => Read(shards[0], ct), ct) : null;
        for (int s = 0; s < shards.Count; s++)
        {
            var records = await next!.ConfigureAwait(false);
            string? following = s + 1 < shards.Count ? shards[s + 1] : null; // (a local: the lambda must not read s later)
            next = following is null ? null : Task.Run(() => Read(following, ct), ct);
            var h = new ImageHash[records.Count];
            var ok = new bool[records.Count];
            Parallel.For(0, records.Count, options, i =>
            {
                try
                {
                    h[i] = ImageHash.Of(records[i].Image);
                    ok[i] = true;
                }
                catch (InvalidDataException)
                {
                    // Only its bytes can match: no pixels, no dHash.
                    h[i] = new ImageHash(ImageHash.BytesOnly(records[i].Image), default, default, default);
                }
            });
            ids.AddRange(records.Select(r => r.Id));
            hashes.AddRange(h);
            decoded.AddRange(ok);
            progress?.Report($"hashing {Path.GetFileName(Path.TrimEndingDirectorySeparator(dataset))}: {ids.Count:N0} of {manifest.Rows:N0}");
        }
        return new Hashed([.. ids], [.. hashes], [.. decoded]);
    }

    private static readonly ParquetColumn IdColumn = ParquetColumn.Required<string>("id");
    private static readonly ParquetColumn AgainstIdColumn = ParquetColumn.Required<string>("against_id");
    private static readonly ParquetColumn AgainstColumn = ParquetColumn.Required<string>("against");
    private static readonly ParquetColumn KindColumn = ParquetColumn.Required<string>("kind");
    private static readonly ParquetColumn DistanceColumn = ParquetColumn.Required<double>("distance");

    /// <summary>duplicates.parquet: <c>id</c>, <c>against_id</c>, <c>kind</c>, <c>distance</c> and <c>against</c> (the set's name).</summary>
    public static async Task WritePairsAsync(string path, IReadOnlyList<DuplicatePair> pairs, CancellationToken ct)
    {
        string temp = AtomicFile.UniqueTempFor(path);
        await using (var file = File.Create(temp))
        {
            // Parquet.Net's default options (no codec named): the file's bytes are pinned by the runs that wrote it.
            var writer = await ParquetFileWriter.CreateAsync([IdColumn, AgainstIdColumn, KindColumn, DistanceColumn, AgainstColumn], file, compression: null, ct).ConfigureAwait(false);
            await using (writer)
            using (var rg = writer.CreateRowGroup())
            {
                await rg.WriteAsync(IdColumn, pairs.Select(p => p.Id).ToArray()).ConfigureAwait(false);
                await rg.WriteAsync(AgainstIdColumn, pairs.Select(p => p.AgainstId).ToArray()).ConfigureAwait(false);
                await rg.WriteAsync(KindColumn, pairs.Select(p => p.Kind).ToArray()).ConfigureAwait(false);
                await rg.WriteAsync<double>(DistanceColumn, pairs.Select(p => p.Distance).ToArray().AsMemory(), ct).ConfigureAwait(false);
                await rg.WriteAsync(AgainstColumn, pairs.Select(p => p.Against).ToArray()).ConfigureAwait(false);
            }
        }
        AtomicFile.Commit(temp, path);
    }

    /// <summary>Reads duplicates.parquet back.</summary>
    public static async Task<List<DuplicatePair>> ReadPairsAsync(string path, CancellationToken ct = default)
    {
        await using var reader = await ParquetFileReader.OpenAsync(path, 4096, ct).ConfigureAwait(false);
        ParquetColumn F(string name) => reader.Columns.First(c => c.Name == name);
        var result = new List<DuplicatePair>();
        for (int g = 0; g < reader.RowGroupCount; g++)
        {
            using var rg = reader.OpenRowGroup(g);
            int n = checked((int)rg.RowCount);
            var ids = new string?[n];
            var againstIds = new string?[n];
            var kinds = new string?[n];
            var against = new string?[n];
            var distances = new double[n];
            await rg.ReadAsync(F("id"), ids.AsMemory(), ct).ConfigureAwait(false);
            await rg.ReadAsync(F("against_id"), againstIds.AsMemory(), ct).ConfigureAwait(false);
            await rg.ReadAsync(F("kind"), kinds.AsMemory(), ct).ConfigureAwait(false);
            await rg.ReadAsync(F("against"), against.AsMemory(), ct).ConfigureAwait(false);
            await rg.ReadAsync<double>(F("distance"), distances.AsMemory(), ct).ConfigureAwait(false);
            for (int i = 0; i < n; i++) result.Add(new DuplicatePair(ids[i]!, againstIds[i]!, against[i]!, kinds[i]!, distances[i]));
        }
        return result;
    }

    /// <summary>Up to <see cref="DedupOptions.SheetPairs"/> pairs of each kind, the closest first: U's image, then the one it duplicates.</summary>
    private static async Task DrawSheetAsync(DedupOptions o, IReadOnlyList<DuplicatePair> pairs, string path, CancellationToken ct)
    {
        var shown = Kinds.SelectMany(k => pairs.Where(p => p.Kind == k).OrderBy(p => p.Distance).ThenBy(p => p.Id, StringComparer.Ordinal).Take(o.SheetPairs)).ToList();
        var wantU = shown.Select(p => p.Id).ToHashSet(StringComparer.Ordinal);
        var bytesU = await ImagesAsync(o.Data, wantU, ct).ConfigureAwait(false);
        // Each against-image from its own set: two sets may share an id.
        var names = AgainstNames(o.Against);
        var bytesA = new Dictionary<(string Set, string Id), byte[]>();
        for (int s = 0; s < o.Against.Count; s++)
        {
            var wantA = shown.Where(p => p.Against == names[s]).Select(p => p.AgainstId).ToHashSet(StringComparer.Ordinal);
            foreach (var (id, bytes) in await ImagesAsync(o.Against[s], wantA, ct).ConfigureAwait(false))
                bytesA[(names[s], id)] = bytes;
        }
        var grey = new SKColor(90, 90, 90);
        var cells = new List<GridCell>();
        foreach (var p in shown)
        {
            string distance = p.Kind switch
            {
                "perceptual" => string.Create(CultureInfo.InvariantCulture, $"cells RMS {p.Distance:0.0}"),
                "embedding" => string.Create(CultureInfo.InvariantCulture, $"cos {1 - p.Distance:0.0000}"),
                _ => "identical",
            };
            cells.Add(new GridCell(bytesU.GetValueOrDefault(p.Id), [new TextLine(p.Id, SKColors.Black, KeepEnd: true), new TextLine($"{p.Kind}, {distance}", grey)]));
            cells.Add(new GridCell(bytesA.GetValueOrDefault((p.Against, p.AgainstId)), [new TextLine(p.AgainstId, SKColors.Black, KeepEnd: true), new TextLine($"in {p.Against}", grey)], new SKColor(37, 99, 235)));
        }
        var heading = new List<TextLine>
        {
            TextLine.Black($"duplicates of {Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(o.Data)))} in {string.Join(", ", AgainstNames(o.Against))}: {pairs.Count:N0} images"),
            new(string.Join(" · ", Kinds.Select(k => $"{k} {pairs.Count(p => p.Kind == k):N0}")) + " · each pair: the image of U, then the one it duplicates (blue frame)", grey),
        };
        if (cells.Count == 0) heading.Add(new TextLine("no duplicates found", grey));
        ImageGrid.Save(path, cells, 8, 96, heading);
    }

    private static Task<Dictionary<string, byte[]>> ImagesAsync(string dataset, HashSet<string> wanted, CancellationToken ct) =>
        ImageShardReader.FindAsync(DatasetManifest.Load(dataset).ShardPaths(dataset), wanted, ct);
}
