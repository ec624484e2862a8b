using System.Text.Json;
using Streaming.Core.Datasets;
using Streaming.Core.Shards;

namespace Streaming.Core.Selection;

/// <summary>
/// Turns D-hat into an image dataset a trainer reads like any other: each selected (class, id) becomes
/// a record labeled with the class, its bytes copied from the unlabeled dataset's shards. An image selected
/// under several classes appears once per class, as <c>id@class</c> (ids stay unique). One pass over U, in
/// U's order, so the result is byte-identical for equal inputs.
/// </summary>
public static class SelectionImages
{
    /// <summary>Reads D-hat's (class, id) pairs, in class then rank order.</summary>
    public static async Task<List<(int Class, string Id)>> ReadPairsAsync(string selectionDir, CancellationToken cancellationToken = default)
    {
        string path = Path.Combine(selectionDir, SelectionManifest.DhatFileName);
        if (!File.Exists(path)) throw new StreamingException($"{path}: not found (is {selectionDir} the output of 'streaming select'?)");
        var pairs = new List<(int, string)>();
        await using var reader = await ParquetFileReader.OpenAsync(path, 4096, cancellationToken).ConfigureAwait(false);
        var classColumn = reader.Columns.First(c => c.Name == "class");
        var idColumn = reader.Columns.First(c => c.Name == "id");
        for (int g = 0; g < reader.RowGroupCount; g++)
        {
            using var rg = reader.OpenRowGroup(g);
            int n = checked((int)rg.RowCount);
            var classes = new int[n];
            var ids = new string?[n];
            await rg.ReadAsync<int>(classColumn, classes.AsMemory(), cancellationToken).ConfigureAwait(false);
            await rg.ReadAsync(idColumn, ids.AsMemory(), cancellationToken).ConfigureAwait(false);
            for (int i = 0; i < n; i++) pairs.Add((classes[i], ids[i]!));
        }
        return pairs;
    }

    /// <summary>
    /// The one route from D-hat to an image dataset: the images of <paramref name="selectionDir"/> (a folder holding
    /// <c>selection.json</c> and <c>dhat.parquet</c>) as a dataset in <paramref name="output"/>. Made once per D-hat: when
    /// <paramref name="output"/> already holds the dataset made from this very <c>dhat.parquet</c> (its hash is in the
    /// dataset's parameters), that one is returned and nothing is copied; anything else there is replaced.
    /// </summary>
    /// <param name="selectionDir">The output of <c>streaming select</c> (or of a pipeline's select stage).</param>
    /// <param name="output">The dataset's folder.</param>
    /// <param name="unlabeledDataset">Where the images are copied from; null: the dataset <c>selection.json</c> says was scored.</param>
    /// <param name="classNames">The dataset's class names; null: <c>selection.json</c>'s.</param>
    /// <param name="log">Told when images are copied (not when a dataset is reused).</param>
    /// <param name="cancellationToken">Stops the copy; the output is then left as it was.</param>
    public static async Task<DatasetManifest> ToDatasetAsync(string selectionDir, string output, string? unlabeledDataset = null,
        IReadOnlyList<string>? classNames = null, Action<string>? log = null, CancellationToken cancellationToken = default)
    {
        string selectionJson = Path.Combine(selectionDir, SelectionManifest.FileName);
        var selection = JsonSerializer.Deserialize<SelectionManifest>(File.ReadAllText(selectionJson))
            ?? throw new StreamingException($"{selectionJson}: empty");
        string dhatSha = Hashing.Sha256File(Path.Combine(selectionDir, SelectionManifest.DhatFileName));
        if (File.Exists(Path.Combine(output, DatasetManifest.FileName)) && DatasetManifest.Load(output) is var made
            && made.Parameters.TryGetValue("selection_sha256", out var madeFrom) && madeFrom == dhatSha)
            return made;
        string unlabeled = unlabeledDataset ?? selection.Dataset
            ?? throw new StreamingException($"{selectionJson}: does not say which dataset was scored, so D-hat's images cannot be found");
        if (!Directory.Exists(unlabeled)) throw new StreamingException($"{selectionJson}: the scored dataset {unlabeled} is gone, so D-hat's images cannot be copied");
        log?.Invoke($"D-hat: copying {selection.Selected:N0} selected images out of {unlabeled} into {output}");
        // What is there is stale (another D-hat's images) or half written (a copy that was killed).
        if (Directory.Exists(output) && Directory.EnumerateFileSystemEntries(output).Any()) Directory.Delete(output, recursive: true);
        return await MaterializeAsync(selectionDir, unlabeled, output, classNames ?? selection.Classes, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Writes D-hat's images, copied out of <paramref name="unlabeledDataset"/>, as a new dataset in <paramref name="output"/>
    /// (which must not hold anything yet); <see cref="ToDatasetAsync"/> is the route that reuses one already made.
    /// </summary>
    private static async Task<DatasetManifest> MaterializeAsync(string selectionDir, string unlabeledDataset, string output, IReadOnlyList<string> classNames,
        CancellationToken cancellationToken = default)
    {
        var pairs = await ReadPairsAsync(selectionDir, cancellationToken).ConfigureAwait(false);
        var wanted = new Dictionary<string, List<int>>(StringComparer.Ordinal);
        foreach (var (c, id) in pairs)
        {
            if (!wanted.TryGetValue(id, out var list)) wanted[id] = list = [];
            list.Add(c);
        }
        var manifest = DatasetManifest.Load(unlabeledDataset);
        long found = 0;
        await using (var writer = new DatasetWriter(output, DatasetWriterOptions.Like(manifest)))
        {
            foreach (var shard in manifest.ShardPaths(unlabeledDataset))
            {
                await foreach (var record in ImageShardReader.ReadAsync(shard, cancellationToken).ConfigureAwait(false))
                {
                    if (!wanted.TryGetValue(record.Id, out var classes)) continue;
                    foreach (int c in classes)
                        await writer.AddAsync(record with { Id = classes.Count == 1 ? record.Id : $"{record.Id}@{c}", Label = c }, cancellationToken).ConfigureAwait(false);
                    found++;
                }
            }
            if (found != wanted.Count)
                throw new StreamingException($"{selectionDir}: {wanted.Count - found} selected ids are not in {unlabeledDataset} (was D-hat scored from another dataset?)");
            var parameters = new SortedDictionary<string, string>(StringComparer.Ordinal)
            {
                ["selection_sha256"] = Hashing.Sha256File(Path.Combine(selectionDir, SelectionManifest.DhatFileName)),
                ["unlabeled_manifest_sha256"] = Hashing.Sha256File(Path.Combine(unlabeledDataset, DatasetManifest.FileName)),
            };
            return await writer.CompleteAsync(new DatasetManifest { Name = "dhat", Origin = "selection (D-hat)", Classes = classNames, Parameters = parameters }, cancellationToken).ConfigureAwait(false);
        }
    }
}
