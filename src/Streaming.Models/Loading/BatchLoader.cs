using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading.Tasks.Dataflow;
using Streaming.Core.Loading;
using Streaming.Core.Dataflow;
using Streaming.Models.Teachers;
using static TorchSharp.torch;

namespace Streaming.Models.Loading;

/// <summary>
/// The training input pipeline as a bounded dataflow graph: epoch order (shard permutation + shuffle
/// buffer) -> decode + augment (parallel, order kept) -> batch -> tensors. Every block is bounded, so
/// it runs at most <see cref="LoaderOptions.Prefetch"/> batches ahead of the model and memory stays
/// flat. Batch b of epoch e holds the same images, augmented the same way, however many workers run
/// and whether or not the run was resumed. Each stage keeps the same counters as the scoring graph
/// (<see cref="Stages"/>: items, busy, blocked, starved, queue), summed over epochs, for <c>profile --stage train</c>.
/// </summary>
public sealed class BatchLoader
{
    private readonly EpochOrder _order;
    private readonly LoaderOptions _options;

    public BatchLoader(string dataset, LoaderOptions options)
    {
        _options = options;
        _order = new EpochOrder(dataset, options.Seed, options.Shuffle, options.ShuffleBuffer);
        if (_order.Count == 0) throw new Streaming.Core.StreamingException($"{dataset}: has no labeled images to train or evaluate on");
        ReadStats = new StageStats("read");
        DecodeStats = new StageStats("decode", options.Workers);
        BatchStats = new StageStats("batch");
    }

    /// <summary>Shard reading and the shuffle buffer: busy producing the next sample, blocked when decode is full.</summary>
    public StageStats ReadStats { get; }
    /// <summary>Decode + augmentation, over its workers.</summary>
    public StageStats DecodeStats { get; }
    /// <summary>Assembly of decoded images into batch tensors.</summary>
    public StageStats BatchStats { get; }
    public IReadOnlyList<StageStats> Stages => [ReadStats, DecodeStats, BatchStats];

    /// <summary>Batches ready and waiting for the model (the current epoch's).</summary>
    public int ReadyBatches => _ready?.OutputCount ?? 0;
    private TransformBlock<Decoded[], Batch>? _ready;

    public Streaming.Core.Datasets.DatasetManifest Manifest => _order.Manifest;

    /// <summary>Labeled images in an epoch.</summary>
    public long EpochSize => _order.Count;

    /// <summary>Batches in an epoch.</summary>
    public long BatchesPerEpoch => DropLast ? EpochSize / _options.BatchSize : (EpochSize + _options.BatchSize - 1) / _options.BatchSize;

    /// <summary>
    /// Whether an epoch's last, partial batch is dropped: as asked, except when the whole epoch is smaller
    /// than one batch (a tiny D-hat), where dropping it would leave epochs with no batch at all.
    /// </summary>
    private bool DropLast => _options.DropLast && EpochSize >= _options.BatchSize;

    private sealed record Decoded(float[] Pixels, int Label, long Index, string Id);

    /// <summary>The batches of one epoch from batch <paramref name="firstBatch"/> on. The caller disposes each batch.</summary>
    public async IAsyncEnumerable<Batch> ReadEpochAsync(long epoch, long firstBatch = 0, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var o = _options;
        int sampleLength = o.Preprocess.TensorLength;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var token = cts.Token;
        var decode = new TransformBlock<TrainingSample, Decoded>(s =>
        {
            DecodeStats.In();
            long start = Stopwatch.GetTimestamp();
            var pixels = new float[sampleLength];
            try
            {
                Augmentation.DecodeAugmented(s.Image, o.Preprocess, o.Augment, o.Seed, epoch, s.Id, pixels);
            }
            catch (InvalidDataException e)
            {
                throw new Streaming.Core.StreamingException($"image '{s.Id}' does not decode ({e.Message}); ingest the data with verification on");
            }
            finally
            {
                DecodeStats.Busy(Stopwatch.GetTimestamp() - start);
            }
            DecodeStats.Out();
            return new Decoded(pixels, s.Label, s.Index, s.Id);
        }, new ExecutionDataflowBlockOptions { MaxDegreeOfParallelism = o.Workers, BoundedCapacity = o.BatchSize * 2, EnsureOrdered = true, CancellationToken = token });
        var batch = new BatchBlock<Decoded>(o.BatchSize, new GroupingDataflowBlockOptions { BoundedCapacity = o.BatchSize * 2, CancellationToken = token });
        var tensors = new TransformBlock<Decoded[], Batch>(items =>
        {
            BatchStats.In(items.Length);
            long start = Stopwatch.GetTimestamp();
            int n = items.Length;
            var data = new float[(long)n * sampleLength];
            var labels = new long[n];
            for (int i = 0; i < n; i++)
            {
                items[i].Pixels.CopyTo(data, (long)i * sampleLength);
                labels[i] = items[i].Label;
            }
            var images = tensor(data, [n, o.Preprocess.Channels, o.Preprocess.Height, o.Preprocess.Width]);
            Tensor? targets = null;
            if (o.SoftTargets is { } soft)
            {
                int c = soft.NumClasses;
                var dist = new float[(long)n * c];
                for (int i = 0; i < n; i++) soft.Fill(items[i].Id, dist.AsSpan(i * c, c));
                targets = tensor(dist, [n, c]);
            }
            var result = new Batch(images, tensor(labels), epoch, items[0].Index / o.BatchSize, targets);
            BatchStats.Busy(Stopwatch.GetTimestamp() - start);
            BatchStats.Out(n);
            return result;
        }, new ExecutionDataflowBlockOptions { BoundedCapacity = o.Prefetch, CancellationToken = token });
        _ready = tensors;
        DecodeStats.QueueDepth = () => decode.InputCount;
        BatchStats.QueueDepth = () => batch.OutputCount + tensors.InputCount;
        var link = new DataflowLinkOptions { PropagateCompletion = true };
        decode.LinkTo(batch, link);
        batch.LinkTo(tensors, link);

        long skip = firstBatch * o.BatchSize;
        long limit = DropLast ? BatchesPerEpoch * o.BatchSize : long.MaxValue;
        var feeder = Task.Run(async () =>
        {
            try
            {
                await using var samples = _order.ReadAsync(epoch, skip, token).GetAsyncEnumerator(token);
                while (true)
                {
                    long start = Stopwatch.GetTimestamp();
                    bool more = await samples.MoveNextAsync().ConfigureAwait(false);
                    long read = Stopwatch.GetTimestamp();
                    ReadStats.Busy(read - start);
                    if (!more) break;
                    var sample = samples.Current;
                    if (sample.Index >= limit) break;
                    ReadStats.In();
                    bool sent = await decode.SendAsync(sample, token).ConfigureAwait(false);
                    ReadStats.Blocked(Stopwatch.GetTimestamp() - read);
                    if (!sent) break;
                    ReadStats.Out();
                }
                decode.Complete();
            }
            catch (Exception e)
            {
                ((IDataflowBlock)decode).Fault(e);
            }
        }, token);

        try
        {
            while (await tensors.OutputAvailableAsync(token).ConfigureAwait(false))
            {
                while (tensors.TryReceive(out var b))
                {
                    if (DropLast && b.Count < o.BatchSize)
                    {
                        b.Dispose();
                        continue;
                    }
                    yield return b;
                }
            }
            await tensors.Completion.ConfigureAwait(false);
        }
        finally
        {
            cts.Cancel();
            try { await feeder.ConfigureAwait(false); } catch (OperationCanceledException) { }
            while (tensors.TryReceive(out var left)) left.Dispose();
        }
    }
}
