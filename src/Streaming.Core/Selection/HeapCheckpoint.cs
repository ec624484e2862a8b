using System.Globalization;
using Apache.Arrow;
using Apache.Arrow.Compression;
using Apache.Arrow.Ipc;
using Apache.Arrow.Types;

namespace Streaming.Core.Selection;

/// <summary>
/// A selector's state on disk: Arrow IPC (file format) with LZ4 frames, one row per kept candidate
/// (<c>class</c> int32, <c>score</c> float, <c>prob</c> float, <c>id</c> string), in batches of up to a million rows;
/// K, P, the mode, the seed, the row count and the per-class top-1 counts ride in the schema metadata.
/// Internal to the engine (what users read is Parquet), cheap to write and to read back. Written to a
/// temporary name and renamed, so a checkpoint is either whole or absent.
/// </summary>
public static class HeapCheckpoint
{
    public const string Format = "streaming.heaps/1";
    private const int BatchRows = 1 << 20;

    private static readonly Schema BaseSchema = new Schema.Builder()
        .Field(f => f.Name("class").DataType(Int32Type.Default).Nullable(false))
        .Field(f => f.Name("score").DataType(FloatType.Default).Nullable(false))
        .Field(f => f.Name("prob").DataType(FloatType.Default).Nullable(false))
        .Field(f => f.Name("id").DataType(StringType.Default).Nullable(false))
        .Build();

    public static Task WriteAsync(string path, Selector selector, CancellationToken cancellationToken = default) =>
        WriteClassesAsync(path, selector, 0, selector.Classes, cancellationToken);

    /// <summary>
    /// A checkpoint of classes <paramref name="first"/> .. first + count - 1 only (the header, rows and top-1 counts are
    /// the whole selector's): a cluster worker's partial is one such file per bucket of classes, so that each merge
    /// grain reads only its own classes.
    /// </summary>
    public static async Task WriteClassesAsync(string path, Selector selector, int first, int count, CancellationToken cancellationToken = default)
    {
        var inv = CultureInfo.InvariantCulture;
        var builder = new Schema.Builder();
        foreach (var f in BaseSchema.FieldsList) builder.Field(f);
        var schema = builder
            .Metadata("format", Format)
            .Metadata("classes", selector.Classes.ToString(inv))
            .Metadata("k", selector.K.ToString(inv))
            .Metadata("p", selector.P.ToString(inv))
            .Metadata("mode", selector.Mode.ToString())
            .Metadata("seed", selector.Seed.ToString(inv))
            .Metadata("rows", selector.Rows.ToString(inv))
            .Metadata("top_one", string.Join(",", selector.TopOneCounts().Select(x => x.ToString(inv))))
            .Build();
        string temp = AtomicFile.TempFor(path);
        await using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            var options = new IpcOptions { CompressionCodec = CompressionCodecType.Lz4Frame, CompressionCodecFactory = new CompressionCodecFactory() };
            using var writer = new ArrowFileWriter(stream, schema, leaveOpen: true, options);
            await writer.WriteStartAsync(cancellationToken).ConfigureAwait(false);
            var classes = new Int32Array.Builder();
            var scores = new FloatArray.Builder();
            var probs = new FloatArray.Builder();
            var ids = new StringArray.Builder();
            int n = 0;
            async Task Flush()
            {
                using var batch = new RecordBatch(schema, [classes.Build(), scores.Build(), probs.Build(), ids.Build()], n);
                await writer.WriteRecordBatchAsync(batch, cancellationToken).ConfigureAwait(false);
                classes.Clear();
                scores.Clear();
                probs.Clear();
                ids.Clear();
                n = 0;
            }
            for (int c = first; c < Math.Min(selector.Classes, first + count); c++)
                foreach (var e in selector.Kept(c))
                {
                    classes.Append(c);
                    scores.Append(e.Score);
                    probs.Append(e.Prob);
                    ids.Append(e.Id);
                    if (++n == BatchRows) await Flush().ConfigureAwait(false);
                }
            if (n > 0) await Flush().ConfigureAwait(false);
            await writer.WriteEndAsync(cancellationToken).ConfigureAwait(false);
            await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
            stream.Flush(flushToDisk: true);
        }
        AtomicFile.Rename(temp, path);
    }

    /// <summary>What a checkpoint's header says: the selector's settings, rows and top-1 counts.</summary>
    public sealed record Header(int Classes, int K, int P, BalanceMode Mode, ulong Seed, long Rows, long[] TopOne);

    /// <summary>Reads a checkpoint back into a selector in the state it was written from.</summary>
    public static async Task<Selector> ReadAsync(string path, CancellationToken cancellationToken = default)
    {
        var (h, kept) = await ReadEntriesAsync(path, cancellationToken).ConfigureAwait(false);
        return Selector.Restore(h.Classes, h.K, h.P, h.Mode, h.Seed, h.Rows, h.TopOne, kept);
    }

    /// <summary>Reads a checkpoint's header and entries (class, candidate), without building heaps.</summary>
    public static async Task<(Header Header, List<(int Class, Candidate Kept)> Entries)> ReadEntriesAsync(string path, CancellationToken cancellationToken = default)
    {
        var kept = new List<(int, Candidate)>();
        var header = await ReadColumnsAsync(path, (_, classes, scores, probs, ids) =>
        {
            for (int i = 0; i < classes.Length; i++)
                kept.Add((classes.GetValue(i)!.Value, new Candidate(scores.GetValue(i)!.Value, ids.GetString(i), probs.GetValue(i)!.Value)));
        }, cancellationToken).ConfigureAwait(false);
        return (header, kept);
    }

    /// <summary>
    /// Reads a checkpoint batch by batch as columns (class, score, prob, id): a merge can look at the score first and
    /// make the id's string only for a candidate that may be kept. Each batch comes with the header. Returns the header.
    /// </summary>
    public static async Task<Header> ReadColumnsAsync(string path, Action<Header, Int32Array, FloatArray, FloatArray, StringArray> batchRead, CancellationToken cancellationToken = default)
    {
        if (!File.Exists(path)) throw new StreamingException($"{path}: heap checkpoint not found");
        try
        {
            await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
            using var reader = new ArrowFileReader(stream, Apache.Arrow.Memory.MemoryAllocator.Default.Value, new CompressionCodecFactory(), leaveOpen: true);
            var schema = await reader.GetSchema(cancellationToken).ConfigureAwait(false);
            var meta = schema.Metadata ?? new Dictionary<string, string>();
            string Meta(string key) => meta.TryGetValue(key, out var v) ? v : throw new InvalidDataException($"metadata '{key}' is missing");
            if (Meta("format") != Format) throw new InvalidDataException($"format '{Meta("format")}', expected '{Format}'");
            var inv = CultureInfo.InvariantCulture;
            int classes = int.Parse(Meta("classes"), inv);
            var topOne = Meta("top_one").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(x => long.Parse(x, inv)).ToArray();
            var header = new Header(classes, int.Parse(Meta("k"), inv), int.Parse(Meta("p"), inv), Enum.Parse<BalanceMode>(Meta("mode")), ulong.Parse(Meta("seed"), inv),
                long.Parse(Meta("rows"), inv), topOne);
            int batches = await reader.RecordBatchCountAsync().ConfigureAwait(false);
            for (int b = 0; b < batches; b++)
            {
                using var batch = await reader.ReadRecordBatchAsync(b, cancellationToken).ConfigureAwait(false);
                batchRead(header, (Int32Array)batch.Column("class"), (FloatArray)batch.Column("score"), (FloatArray)batch.Column("prob"), (StringArray)batch.Column("id"));
            }
            return header;
        }
        catch (Exception e) when (e is not OperationCanceledException and not StreamingException)
        {
            throw new StreamingException($"{path}: corrupt heap checkpoint ({e.Message})", e);
        }
    }
}
