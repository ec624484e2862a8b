using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using System.Threading.Tasks.Dataflow;
using Streaming.Core.Datasets;
using Streaming.Core.Decode;
using Streaming.Core.Shards;

namespace Streaming.Core.Ingest;

/// <summary>
/// Turns a source into a dataset folder through a bounded dataflow graph:
/// source (sequential) -> prepare (parallel: PNG-encode raw pixels, verify, hash; order kept) -> writer
/// (sequential: dedup by content, unique ids, shards). The output depends only on the source, never on
/// the number of workers: the first copy of duplicate bytes (in source order) is the one kept.
/// </summary>
public static class Ingestor
{
    public const string DuplicatesFileName = "duplicates.jsonl";

    private sealed record Prepared(ImageRecord? Record, QuarantineEntry? Bad, UInt128 Hash);

    public static async Task<IngestResult> RunAsync(ImageSource source, string output, IngestOptions? options = null,
        IProgress<IngestProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        options ??= new IngestOptions();
        var clock = Stopwatch.StartNew();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var token = cts.Token;
        // A source with tags gives the dataset a tags column; one without keeps the plain schema (and its shards' bytes).
        bool tags = options.Writer.Tags || source.HasTags;
        await using var writer = new DatasetWriter(output, options.Writer with { Tags = tags });

        long read = 0, duplicates = 0;
        var seen = new Dictionary<UInt128, string>();
        StreamWriter? duplicateLog = null;

        var prepare = new TransformBlock<SourceRecord, Prepared>(r => Prepare(r, options), new ExecutionDataflowBlockOptions
        {
            MaxDegreeOfParallelism = options.Workers,
            BoundedCapacity = options.Workers * 8,
            EnsureOrdered = true,
            CancellationToken = token,
        });
        var write = new ActionBlock<Prepared>(async p =>
        {
            if (p.Bad is not null)
            {
                writer.Quarantine(p.Bad);
                return;
            }
            var record = p.Record!;
            if (record.Tags is not null && !tags)
                throw new StreamingException($"{record.Source}: has tags, but the source's first samples had none, so the dataset has no tags column; ingest again with --tags");
            if (seen.TryGetValue(p.Hash, out var firstId))
            {
                duplicates++;
                duplicateLog ??= new StreamWriter(Path.Combine(writer.TempPath, DuplicatesFileName), false, new System.Text.UTF8Encoding(false));
                duplicateLog.Write(JsonSerializer.Serialize(new { id = record.Id, source = record.Source, duplicate_of = firstId }));
                duplicateLog.Write('\n');
                return;
            }
            string baseId = options.IdPrefix + record.Id;
            string id = baseId;
            for (int n = 2; writer.ContainsId(id); n++) id = $"{baseId}#{n}";
            seen[p.Hash] = id;
            await writer.AddAsync(id == record.Id ? record : record with { Id = id }, token).ConfigureAwait(false);
        }, new ExecutionDataflowBlockOptions { MaxDegreeOfParallelism = 1, BoundedCapacity = options.Workers * 8, CancellationToken = token });
        prepare.LinkTo(write, new DataflowLinkOptions { PropagateCompletion = true });

        using var timer = progress is null ? null : new Timer(_ =>
            progress.Report(new IngestProgress(Interlocked.Read(ref read), writer.Rows, duplicates, writer.Quarantined, clock.Elapsed)),
            null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));

        // A writer that fails must stop the source too, or a full queue would block it forever.
        _ = write.Completion.ContinueWith(t => { if (t.IsFaulted) cts.Cancel(); }, CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        Exception? sourceError = null;
        try
        {
            try
            {
                await foreach (var item in source.ReadAsync(token).ConfigureAwait(false))
                {
                    Interlocked.Increment(ref read);
                    if (!await prepare.SendAsync(item, token).ConfigureAwait(false)) break;
                }
            }
            catch (Exception e)
            {
                sourceError = e;
            }
            if (sourceError is null) prepare.Complete();
            else ((IDataflowBlock)prepare).Fault(sourceError);
            try
            {
                await write.Completion.ConfigureAwait(false);
            }
            catch (Exception) when (sourceError is not null && !write.Completion.IsFaulted)
            {
                // The source's error is the root cause; the graph only stopped because of it.
            }
            catch (Exception) when (write.Completion.IsFaulted)
            {
                // The writer's own error is the root cause (the source was cancelled because of it).
                throw write.Completion.Exception!.Flatten().InnerExceptions.First(e => e is not OperationCanceledException);
            }
            if (sourceError is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(sourceError);
        }
        finally
        {
            if (duplicateLog is not null) await duplicateLog.DisposeAsync().ConfigureAwait(false);
        }

        var header = new DatasetManifest
        {
            Name = options.Name,
            Origin = $"ingest {source.Format.ToString().ToLowerInvariant()}",
            Classes = source.ClassNames,
            Verified = options.Verify,
            Duplicates = duplicates,
        };
        var manifest = await writer.CompleteAsync(header, token).ConfigureAwait(false);
        progress?.Report(new IngestProgress(read, manifest.Rows, duplicates, manifest.Quarantined, clock.Elapsed));
        return new IngestResult(manifest, read, duplicates, source.Ignored, clock.Elapsed);
    }

    private static Prepared Prepare(SourceRecord r, IngestOptions options)
    {
        if (r.Error is { } error) return new Prepared(null, new QuarantineEntry(r.Id, r.Source, error.Reason, error.Detail), default);
        byte[] bytes;
        string format = "";
        int width = 0, height = 0;
        if (r.Raw is { } raw)
        {
            bytes = PngEncoder.Encode(raw.Pixels, raw.Width, raw.Height, raw.Channels);
            format = "png";
            width = raw.Width;
            height = raw.Height;
        }
        else
        {
            bytes = r.Encoded ?? [];
        }
        if (bytes.Length == 0) return new Prepared(null, new QuarantineEntry(r.Id, r.Source, QuarantineReasons.Empty, "0 bytes"), default);
        if (options.Verify)
        {
            var check = ImageDecoder.Check(bytes, options.MaxPixels);
            if (!check.Ok) return new Prepared(null, new QuarantineEntry(r.Id, r.Source, check.Reason!, check.Detail!), default);
            (format, width, height) = (check.Format, check.Width, check.Height);
        }
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(bytes, digest);
        var hash = new UInt128(BitConverter.ToUInt64(digest), BitConverter.ToUInt64(digest[8..]));
        var record = new ImageRecord(r.Id, bytes, r.Label, r.Source, format, width, height, Convert.ToHexStringLower(digest)) { Tags = r.Tags };
        return new Prepared(record, null, hash);
    }
}
