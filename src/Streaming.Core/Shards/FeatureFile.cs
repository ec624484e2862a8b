using Parquet;
using Parquet.Schema;

namespace Streaming.Core.Shards;

/// <summary>Image features in memory: <see cref="Count"/> rows of <see cref="Dim"/> floats, with their ids and labels (-1: none).</summary>
public sealed record FeatureSet(string[] Ids, int[] Labels, float[] Values, int Dim)
{
    public int Count => Ids.Length;
    public ReadOnlySpan<float> Row(int i) => Values.AsSpan(i * Dim, Dim);
}

/// <summary>
/// Features as Parquet: <c>id</c> (string), <c>label</c> (int32, null when unlabeled) and <c>features</c>
/// (list&lt;float&gt;, the penultimate layer), a standard LIST column as in score shards, so DuckDB, pandas and Spark read
/// it as a list. Written atomically, one row group per <see cref="RowGroupRows"/> rows.
/// </summary>
public static class FeatureFile
{
    public const int RowGroupRows = 16_384;
    private static readonly DataField<string> IdField = new("id", nullable: false);
    private static readonly DataField<int?> LabelField = new("label", nullable: true);
    private static readonly DataField<float> ValueField = new("element", nullable: false);
    private static readonly ParquetSchema Schema = new(IdField, LabelField, new ListField("features", ValueField));

    /// <summary>Writes <paramref name="set"/> to <paramref name="path"/> (a temporary name, then renamed).</summary>
    public static async Task WriteAsync(string path, FeatureSet set, CancellationToken cancellationToken = default)
    {
        string temp = AtomicFile.UniqueTempFor(path);
        try
        {
            await using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
            {
                var writer = await ParquetWriter.CreateAsync(Schema, file, new ParquetOptions { CompressionMethod = CompressionMethod.Snappy },
                    cancellationToken: cancellationToken).ConfigureAwait(false);
                await using (writer)
                {
                    int dim = set.Dim, most = Math.Min(set.Count, RowGroupRows) * dim;
                    var rep = new int[Math.Max(1, most)];
                    var def = new int[Math.Max(1, most)];
                    Array.Fill(def, ValueField.MaxDefinitionLevel);
                    for (int i = 0; i < rep.Length; i++) rep[i] = dim > 0 && i % dim == 0 ? 0 : 1;
                    for (int start = 0; start < set.Count || (start == 0 && set.Count == 0); start += RowGroupRows)
                    {
                        int n = Math.Min(RowGroupRows, set.Count - start);
                        using var rg = writer.CreateRowGroup();
                        await rg.WriteAsync(IdField, new ArraySegment<string>(set.Ids, start, n)).ConfigureAwait(false);
                        var labels = new int?[n];
                        for (int i = 0; i < n; i++) labels[i] = set.Labels[start + i] >= 0 ? set.Labels[start + i] : null;
                        await rg.WriteAsync<int>(LabelField, labels.AsMemory(), cancellationToken: cancellationToken).ConfigureAwait(false);
                        await rg.WriteAllPartsAsync<float>(ValueField, set.Values.AsMemory(start * dim, n * dim), def.AsMemory(0, n * dim), rep.AsMemory(0, n * dim),
                            cancellationToken).ConfigureAwait(false);
                        if (set.Count == 0) break;
                    }
                }
                await file.FlushAsync(cancellationToken).ConfigureAwait(false);
                file.Flush(flushToDisk: true);
            }
            AtomicFile.Commit(temp, path);
        }
        catch
        {
            AtomicFile.TryDelete(temp);
            throw;
        }
    }

    /// <summary>Reads a feature file back; every row must have the same number of features.</summary>
    public static async Task<FeatureSet> ReadAsync(string path, CancellationToken cancellationToken = default)
    {
        if (!File.Exists(path)) throw new StreamingException($"{path}: not found");
        await using var reader = await ParquetFileReader.OpenAsync(path, 4096, cancellationToken).ConfigureAwait(false);
        var columns = reader.Columns;
        ParquetColumn Column(string name) => columns.FirstOrDefault(c => c.Name == name) ?? throw new StreamingException($"{path}: not a feature file: column '{name}' is missing");
        var idColumn = Column("id");
        var labelColumn = Column("label");
        var valueColumn = columns.FirstOrDefault(c => c.Path.Contains("features")) ?? throw new StreamingException($"{path}: not a feature file: column 'features' is missing");
        var ids = new List<string>();
        var labels = new List<int>();
        var values = new List<float>();
        for (int g = 0; g < reader.RowGroupCount; g++)
        {
            using var rg = reader.OpenRowGroup(g);
            int n = checked((int)rg.RowCount);
            var id = new string?[n];
            var label = new int?[n];
            await rg.ReadAsync(idColumn, id.AsMemory(), cancellationToken).ConfigureAwait(false);
            await rg.ReadAsync<int>(labelColumn, label.AsMemory(), cancellationToken).ConfigureAwait(false);
            long count = rg.ValueCount(valueColumn) ?? throw new StreamingException($"{path}: features: no column metadata");
            var chunk = new float[checked((int)count)];
            var definition = new int[chunk.Length];
            var repetition = new int[chunk.Length];
            await rg.ReadRawAsync<float>(valueColumn, chunk.AsMemory(), definition.AsMemory(), repetition.AsMemory(), cancellationToken).ConfigureAwait(false);
            values.AddRange(chunk);
            for (int i = 0; i < n; i++)
            {
                ids.Add(id[i] ?? throw new StreamingException($"{path}: row {ids.Count} has a null id"));
                labels.Add(label[i] ?? -1);
            }
        }
        int dim = ids.Count == 0 ? 0 : values.Count / ids.Count;
        if (dim * ids.Count != values.Count) throw new StreamingException($"{path}: rows have unequal numbers of features");
        return new FeatureSet([.. ids], [.. labels], [.. values], dim);
    }
}
