using System.Buffers;
using System.Runtime.CompilerServices;
using Streaming.Core.Shards;

namespace Streaming.Core.Selection;

/// <summary>
/// Score shards: Parquet with <c>id</c> (string), <c>classes</c> (list&lt;int32&gt;) and <c>probs</c>
/// (list&lt;float&gt;), each row's lists in descending probability. Standard LIST columns, so pandas,
/// pyarrow, DuckDB and Spark read them as lists.
/// </summary>
public static class ScoreShards
{
    private static readonly ParquetColumn IdColumn = ParquetColumn.Required<string>("id");
    private static readonly ParquetColumn ClassColumn = ParquetColumn.List<int>("classes");
    private static readonly ParquetColumn ProbColumn = ParquetColumn.List<float>("probs");
    private static readonly ParquetColumn[] Schema = [IdColumn, ClassColumn, ProbColumn];

    /// <summary>
    /// Writes rows to <paramref name="path"/> atomically (a temporary name, fsynced, then renamed). Returns the file's
    /// SHA-256, hashed as it was written.
    /// </summary>
    public static async Task<string> WriteAsync(string path, IReadOnlyList<ScoreRow> rows, int rowGroupSize = 65_536, CancellationToken cancellationToken = default)
    {
        // Rows of unequal lengths (a teacher of fewer classes than P') are written as lists of their own lengths.
        int total = 0;
        foreach (var r in rows)
        {
            if (r.Classes.Length == 0 || r.Classes.Length != r.Probs.Length) throw new ArgumentException($"score row '{r.Id}' needs as many classes as probabilities, at least one");
            total += r.Classes.Length;
        }
        var ids = new string[rows.Count];
        var classes = new int[total];
        var probs = new float[total];
        var offsets = new int[rows.Count + 1];
        for (int i = 0, at = 0; i < rows.Count; i++)
        {
            ids[i] = rows[i].Id;
            rows[i].Classes.CopyTo(classes, at);
            rows[i].Probs.CopyTo(probs, at);
            at += rows[i].Classes.Length;
            offsets[i + 1] = at;
        }
        return await WriteAsync(path, ids, classes, probs, rows.Count, i => offsets[i], rowGroupSize, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Writes <paramref name="count"/> rows given as columns, <paramref name="stride"/> classes a row (the scoring graph's
    /// form): the same bytes as the row form would write. Atomic; returns the file's SHA-256.
    /// </summary>
    public static Task<string> WriteAsync(string path, string[] ids, int[] classes, float[] probs, int stride, int count, int rowGroupSize = 65_536,
        CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(stride, 1);
        return WriteAsync(path, ids, classes, probs, count, i => i * stride, rowGroupSize, cancellationToken);
    }

    /// <param name="offset">Where row i's classes start in <paramref name="classes"/> (for i up to the row count).</param>
    private static async Task<string> WriteAsync(string path, string[] ids, int[] classes, float[] probs, int count, Func<int, int> offset, int rowGroupSize,
        CancellationToken cancellationToken)
    {
        string temp = AtomicFile.UniqueTempFor(path); // two writers of one score shard (a stale cluster worker) must not share it
        string sha256;
        int most = 0;
        for (int start = 0; start < count; start += rowGroupSize) most = Math.Max(most, offset(Math.Min(count, start + rowGroupSize)) - offset(start));
        // The levels of a row group (pooled): repetition 0 where a row's list starts, 1 inside it; every entry is present.
        int[] rep = ArrayPool<int>.Shared.Rent(Math.Max(most, 1)), def = ArrayPool<int>.Shared.Rent(Math.Max(most, 1));
        try
        {
            await using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
            await using (var stream = new HashingStream(file))
            {
                var writer = await ParquetFileWriter.CreateAsync(Schema, stream, ShardCompression.Snappy, cancellationToken).ConfigureAwait(false);
                await using (writer)
                for (int start = 0; start < count || (start == 0 && count == 0); start += rowGroupSize)
                {
                    int n = Math.Min(rowGroupSize, count - start);
                    int first = offset(start), total = offset(start + n) - first;
                    Array.Fill(def, ClassColumn.MaxDefinitionLevel, 0, total);
                    for (int i = 0; i < n; i++)
                    {
                        int a = offset(start + i) - first, b = offset(start + i + 1) - first;
                        if (b <= a) throw new ArgumentException($"score row '{ids[start + i]}' needs as many classes as probabilities, at least one");
                        rep[a] = 0;
                        Array.Fill(rep, 1, a + 1, b - a - 1);
                    }
                    using var rg = writer.CreateRowGroup();
                    await rg.WriteAsync(IdColumn, new ArraySegment<string>(ids, start, n)).ConfigureAwait(false);
                    await rg.WriteListAsync<int>(ClassColumn, classes.AsMemory(first, total), def.AsMemory(0, total), rep.AsMemory(0, total), cancellationToken).ConfigureAwait(false);
                    await rg.WriteListAsync<float>(ProbColumn, probs.AsMemory(first, total), def.AsMemory(0, total), rep.AsMemory(0, total), cancellationToken).ConfigureAwait(false);
                    if (count == 0) break;
                }
                sha256 = stream.Sha256(); // the writer, disposed, has written the footer
            }
            AtomicFile.Commit(temp, path);
        }
        catch
        {
            AtomicFile.TryDelete(temp);
            throw;
        }
        finally
        {
            ArrayPool<int>.Shared.Return(rep);
            ArrayPool<int>.Shared.Return(def);
        }
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
        var reader = await ParquetFileReader.OpenAsync(path, cancellationToken: cancellationToken).ConfigureAwait(false);
        await using (reader)
        {
            ParquetColumn Find(string top) => reader.Columns.FirstOrDefault(c => c.Path.Count >= 1 && c.Path[0] == top)
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
                    using var rg = reader.OpenRowGroup(g);
                    int n = checked((int)rg.RowCount);
                    var ids = new string?[n];
                    await rg.ReadAsync(idF, ids.AsMemory(), cancellationToken).ConfigureAwait(false);
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
    private static async Task<(T[] Values, int[]? Repetition)> ReadListAsync<T>(ParquetGroupReader rg, ParquetColumn column, bool keepRepetition, CancellationToken ct) where T : struct
    {
        long count = rg.ValueCount(column) ?? throw new InvalidDataException($"{column.Name}: no column metadata");
        var values = GC.AllocateUninitializedArray<T>(checked((int)count));
        var definition = ArrayPool<int>.Shared.Rent(values.Length);
        var repetition = ArrayPool<int>.Shared.Rent(values.Length);
        try
        {
            await rg.ReadRawAsync<T>(column, values.AsMemory(), definition.AsMemory(0, values.Length), repetition.AsMemory(0, values.Length), ct).ConfigureAwait(false);
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
