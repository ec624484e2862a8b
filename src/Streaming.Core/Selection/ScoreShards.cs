using System.Buffers;
using System.Runtime.CompilerServices;
using Parquet;
using Parquet.Schema;

namespace Streaming.Core.Selection;

/// <summary>
/// Score shards: Parquet with <c>id</c> (string), <c>classes</c> (list&lt;int32&gt;) and <c>probs</c>
/// (list&lt;float&gt;), each row's lists in descending probability. Standard LIST columns, so pandas,
/// pyarrow, DuckDB and Spark read them as lists.
/// </summary>
public static class ScoreShards
{
    private static readonly DataField<string> IdField = new("id", nullable: false);
    private static readonly DataField<int> ClassField = new("element", nullable: false);
    private static readonly DataField<float> ProbField = new("element", nullable: false);
    private static readonly ParquetSchema Schema = new(IdField, new ListField("classes", ClassField), new ListField("probs", ProbField));

    /// <summary>
    /// Writes rows to <paramref name="path"/> atomically (a temporary name, then a rename). Returns the file's SHA-256,
    /// hashed as it was written.
    /// </summary>
    public static async Task<string> WriteAsync(string path, IReadOnlyList<ScoreRow> rows, int rowGroupSize = 65_536, CancellationToken cancellationToken = default)
    {
        string temp = AtomicFile.TempFor(path);
        string sha256;
        await using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        await using (var stream = new HashingStream(file))
        {
            var writer = await ParquetWriter.CreateAsync(Schema, stream,
                new ParquetOptions { CompressionMethod = CompressionMethod.Snappy }, cancellationToken: cancellationToken).ConfigureAwait(false);
            await using (writer)
            for (int start = 0; start < rows.Count || (start == 0 && rows.Count == 0); start += rowGroupSize)
            {
                int n = Math.Min(rowGroupSize, rows.Count - start);
                int total = 0;
                for (int i = 0; i < n; i++) total += rows[start + i].Classes.Length;
                var ids = new string[n];
                var classes = new int[total];
                var probs = new float[total];
                var rep = new int[total];
                int at = 0;
                for (int i = 0; i < n; i++)
                {
                    var r = rows[start + i];
                    if (r.Classes.Length == 0 || r.Classes.Length != r.Probs.Length) throw new ArgumentException($"score row '{r.Id}' needs as many classes as probabilities, at least one");
                    ids[i] = r.Id;
                    r.Classes.CopyTo(classes, at);
                    r.Probs.CopyTo(probs, at);
                    rep[at] = 0;
                    for (int j = 1; j < r.Classes.Length; j++) rep[at + j] = 1;
                    at += r.Classes.Length;
                }
                // Every entry is present: its definition level is the element's maximum.
                var def = new int[total];
                Array.Fill(def, ClassField.MaxDefinitionLevel);
                using var rg = writer.CreateRowGroup();
                await rg.WriteAsync(IdField, ids).ConfigureAwait(false);
                await rg.WriteAllPartsAsync<int>(ClassField, classes.AsMemory(), def.AsMemory(), rep.AsMemory(), cancellationToken).ConfigureAwait(false);
                await rg.WriteAllPartsAsync<float>(ProbField, probs.AsMemory(), def.AsMemory(), rep.AsMemory(), cancellationToken).ConfigureAwait(false);
                if (rows.Count == 0) break;
            }
            sha256 = stream.Sha256(); // the writer, disposed, has written the footer
        }
        AtomicFile.Commit(temp, path);
        return sha256;
    }

    /// <summary>Streams the rows of a score shard in file order.</summary>
    public static async IAsyncEnumerable<ScoreRow> ReadAsync(string path, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var batch in ReadBatchesAsync(path, cancellationToken).ConfigureAwait(false))
            for (int i = 0; i < batch.Count; i++) yield return batch.Row(i);
    }

    /// <summary>Streams a score shard one row group at a time, as columns (no object per row).</summary>
    public static async IAsyncEnumerable<ScoreBatch> ReadBatchesAsync(string path, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (!File.Exists(path)) throw new StreamingException($"{path}: score shard not found");
        await using var stream = ParquetFiles.OpenRead(path);
        var reader = await ParquetFiles.OpenAsync(stream, path, cancellationToken).ConfigureAwait(false);
        await using (reader)
        {
            var fields = reader.Schema.GetDataFields();
            DataField Find(string top) => fields.FirstOrDefault(f => f.Path.Length >= 1 && f.Path[0] == top)
                ?? throw new StreamingException($"{path}: not a score shard: column '{top}' is missing");
            var idF = Find("id");
            var classF = Find("classes");
            var probF = Find("probs");
            for (int g = 0; g < reader.RowGroupCount; g++)
            {
                ScoreBatch batch;
                int[]? classRep = null;
                try
                {
                    using var rg = reader.OpenRowGroupReader(g);
                    int n = checked((int)rg.RowCount);
                    var ids = new string?[n];
                    await rg.ReadAsync(idF, ids.AsMemory(), cancellationToken: cancellationToken).ConfigureAwait(false);
                    (var classes, classRep) = await ReadListAsync<int>(rg, classF, keepRepetition: true, cancellationToken).ConfigureAwait(false);
                    var repetition = classRep!;
                    var (probs, _) = await ReadListAsync<float>(rg, probF, keepRepetition: false, cancellationToken).ConfigureAwait(false);
                    if (classes.Length != probs.Length) throw new InvalidDataException("classes and probs differ in length");
                    var offsets = new int[n + 1];
                    int at = 0;
                    for (int i = 0; i < n; i++)
                    {
                        if (ids[i] is null) throw new InvalidDataException($"row {i} has a null id");
                        if (at >= classes.Length || repetition[at] != 0) throw new InvalidDataException($"row {i} has no scores");
                        offsets[i] = at;
                        at++;
                        while (at < classes.Length && repetition[at] != 0)
                        {
                            // The selection takes a row's first P as its top P and stops at the first too low: the order is part of the format.
                            if (probs[at] > probs[at - 1]) throw new InvalidDataException($"row {i} ('{ids[i]}'): probabilities not in descending order");
                            at++;
                        }
                    }
                    if (at != classes.Length) throw new InvalidDataException("more list entries than rows");
                    offsets[n] = at;
                    batch = new ScoreBatch(ids!, offsets, classes, probs);
                }
                catch (Exception e) when (e is not OperationCanceledException and not StreamingException)
                {
                    throw new StreamingException($"{path}: corrupt score shard ({e.Message})", e);
                }
                finally
                {
                    if (classRep is not null) ArrayPool<int>.Shared.Return(classRep);
                }
                yield return batch;
            }
        }
    }

    /// <summary>
    /// Reads a list column's values and, when <paramref name="keepRepetition"/>, its repetition levels (rented
    /// from the shared pool, at least the value count long: the caller returns them). The values array is new
    /// and uninitialized: the reader fills it whole, and zeroing ~10 MB a row group was a tenth of the read time.
    /// </summary>
    private static async Task<(T[] Values, int[]? Repetition)> ReadListAsync<T>(ParquetRowGroupReader rg, DataField field, bool keepRepetition, CancellationToken ct) where T : struct
    {
        long count = rg.GetMetadata(field)?.MetaData?.NumValues ?? throw new InvalidDataException($"{field.Name}: no column metadata");
        var values = GC.AllocateUninitializedArray<T>(checked((int)count));
        var definition = ArrayPool<int>.Shared.Rent(values.Length);
        var repetition = ArrayPool<int>.Shared.Rent(values.Length);
        try
        {
            await rg.ReadRawAsync<T>(field, values.AsMemory(), definition.AsMemory(0, values.Length), repetition.AsMemory(0, values.Length), ct).ConfigureAwait(false);
        }
        catch
        {
            ArrayPool<int>.Shared.Return(repetition);
            throw;
        }
        finally
        {
            ArrayPool<int>.Shared.Return(definition);
        }
        if (keepRepetition) return (values, repetition);
        ArrayPool<int>.Shared.Return(repetition);
        return (values, null);
    }
}
