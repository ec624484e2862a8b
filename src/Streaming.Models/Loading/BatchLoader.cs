using System.Buffers;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading.Tasks.Dataflow;
using Streaming.Core.Dataflow;
using Streaming.Core.Loading;
using static TorchSharp.torch;

namespace Streaming.Models.Loading;

/// <summary>
/// The training input pipeline, on the same stage base as the scoring graph (<see cref="Stage{TIn}"/>): read (epoch
/// order: shard permutation and a shuffle buffer, grouped into batches) -> decode (decode + augment, the workers
/// sharing each batch, into one pooled pixel buffer) -> batch (the tensors) -> the model. Every stage is bounded, so it
/// runs at most <see cref="LoaderOptions.Prefetch"/> batches ahead of the model and memory stays flat. Batch b of
/// epoch e holds the same images, augmented the same way, however many workers run and whether or not the run was
/// resumed. The stages' counters (<see cref="Stages"/>: items, busy, blocked, starved, queue) run on over epochs, for
/// <c>profile --stage train</c>.
/// </summary>
public sealed class BatchLoader
{
    private readonly EpochOrder _order;
    private readonly LoaderOptions _options;
    private BufferBlock<Batch>? _ready;

    public BatchLoader(string dataset, LoaderOptions options)
    {
        _options = options;
        _order = new EpochOrder(dataset, options.Seed, options.Shuffle, options.ShuffleBuffer, options.IncludeUnlabeled);
        if (_order.Count == 0) throw new Streaming.Core.StreamingException(options.IncludeUnlabeled ? $"{dataset}: has no images" : $"{dataset}: has no labeled images to train or evaluate on");
        ReadStats = new StageStats("read");
        DecodeStats = new StageStats("decode", options.Workers);
        BatchStats = new StageStats("batch");
    }

    /// <summary>Shard reading and the shuffle buffer, into batches: blocked when decode is full.</summary>
    public StageStats ReadStats { get; }
    /// <summary>Decode + augmentation, over its workers.</summary>
    public StageStats DecodeStats { get; }
    /// <summary>The batches' tensors.</summary>
    public StageStats BatchStats { get; }
    public IReadOnlyList<StageStats> Stages => [ReadStats, DecodeStats, BatchStats];

    /// <summary>Batches ready and waiting for the model (the current epoch's).</summary>
    public int ReadyBatches => _ready?.Count ?? 0;

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

    /// <summary>A batch on its way: the samples, then their pixels (pooled).</summary>
    private sealed class Pending(int capacity)
    {
        public readonly TrainingSample[] Samples = new TrainingSample[capacity];
        public int Count;
        public float[]? Pixels;
        public long Index;

        public void ReturnPixels()
        {
            if (Pixels is not null) ArrayPool<float>.Shared.Return(Pixels);
            Pixels = null;
        }
    }

    /// <summary>The batches of one epoch from batch <paramref name="firstBatch"/> on. The caller disposes each batch.</summary>
    public async IAsyncEnumerable<Batch> ReadEpochAsync(long epoch, long firstBatch = 0, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var token = cts.Token;
        long skip = firstBatch * _options.BatchSize;
        long limit = DropLast ? BatchesPerEpoch * _options.BatchSize : long.MaxValue;
        var read = new ReadStage(this, epoch, skip, limit, token);
        var decode = new DecodeStage(this, epoch, token);
        var tensors = new TensorStage(this, epoch, token);
        var ready = new BufferBlock<Batch>(new DataflowBlockOptions { BoundedCapacity = _options.Prefetch, CancellationToken = token });
        _ready = ready;
        read.LinkTo(decode);
        decode.LinkTo(tensors);
        tensors.LinkTo(ready);
        read.Input.Post(0); // one item: the epoch, read from its start to its end
        read.Complete();
        try
        {
            while (await ready.OutputAvailableAsync(token).ConfigureAwait(false))
            {
                while (ready.TryReceive(out var b))
                {
                    if (DropLast && b.Count < (_options.Share?.Count ?? _options.BatchSize))
                    {
                        b.Dispose();
                        continue;
                    }
                    yield return b;
                }
            }
            await ready.Completion.ConfigureAwait(false);
        }
        finally
        {
            cts.Cancel();
            foreach (var stage in new Task[] { read.Completion, decode.Completion, tensors.Completion })
                try { await stage.ConfigureAwait(false); } catch (OperationCanceledException) { } catch (Exception) when (token.IsCancellationRequested) { }
            while (ready.TryReceive(out var left)) left.Dispose();
            decode.ReturnHeld();
            tensors.ReturnHeld();
        }
    }

    /// <summary>Read: the epoch's samples in order (from <c>skip</c>, up to <c>limit</c>), in batches.</summary>
    private sealed class ReadStage(BatchLoader loader, long epoch, long skip, long limit, CancellationToken token)
        : Stage<int, Pending>(loader.ReadStats, capacity: 1, token)
    {
        protected override async ValueTask ProcessAsync(int _)
        {
            int size = loader._options.BatchSize;
            var pending = new Pending(size) { Index = skip / size };
            await foreach (var sample in loader._order.ReadAsync(epoch, skip, CancellationToken).ConfigureAwait(false))
            {
                if (sample.Index >= limit) break;
                Stats.In();
                pending.Samples[pending.Count++] = sample;
                if (pending.Count < size) continue;
                await EmitShareAsync(pending).ConfigureAwait(false);
                pending = new Pending(size) { Index = pending.Index + 1 };
            }
            if (pending.Count == 0) return;
            await EmitShareAsync(pending).ConfigureAwait(false);
        }

        /// <summary>The batch, or this process's share of it (<see cref="LoaderOptions.Share"/>): only that goes on to decode.</summary>
        private async Task EmitShareAsync(Pending pending)
        {
            if (loader._options.Share is { } share)
            {
                var (start, count) = share;
                int end = Math.Min(pending.Count, start + count);
                int n = Math.Max(0, end - start);
                Array.Copy(pending.Samples, Math.Min(start, pending.Count), pending.Samples, 0, n);
                Array.Clear(pending.Samples, n, pending.Samples.Length - n);
                pending.Count = n;
            }
            Stats.Out(pending.Count);
            await EmitAsync(pending).ConfigureAwait(false);
        }
    }

    /// <summary>Decode: each sample decoded and augmented (seeded by seed, epoch and id) into its slot of the batch's pooled pixels.</summary>
    private sealed class DecodeStage(BatchLoader loader, long epoch, CancellationToken token)
        : Stage<Pending, Pending>(loader.DecodeStats, capacity: 1, token)
    {
        private readonly ParallelOptions _parallel = new() { MaxDegreeOfParallelism = loader._options.Workers, CancellationToken = token };
        private readonly HashSet<Pending> _held = [];

        protected override bool ReportsBusy => true;

        protected override async ValueTask ProcessAsync(Pending pending)
        {
            var o = loader._options;
            int length = o.Preprocess.TensorLength;
            Stats.In(pending.Count);
            pending.Pixels = ArrayPool<float>.Shared.Rent(checked(pending.Count * length));
            lock (_held) _held.Add(pending);
            void One(int i)
            {
                long start = Stopwatch.GetTimestamp();
                var s = pending.Samples[i];
                try
                {
                    Augmentation.DecodeAugmented(s.Image, o.Preprocess, o.Augment, o.Seed, epoch, s.Id, pending.Pixels.AsSpan(i * length, length));
                }
                catch (InvalidDataException e)
                {
                    throw new Streaming.Core.StreamingException($"image '{s.Id}' does not decode ({e.Message}); ingest the data with verification on");
                }
                finally
                {
                    Stats.Busy(Stopwatch.GetTimestamp() - start);
                }
            }
            if (Stats.Workers == 1) for (int i = 0; i < pending.Count; i++) One(i);
            else Parallel.For(0, pending.Count, _parallel, One);
            Stats.Out(pending.Count);
            await EmitAsync(pending).ConfigureAwait(false);
            lock (_held) _held.Remove(pending);
        }

        protected override void DiscardOutput(Pending item) => item.ReturnPixels();

        /// <summary>Returns the pixels of batches a stopped epoch left here.</summary>
        public void ReturnHeld()
        {
            lock (_held)
            {
                foreach (var p in _held) p.ReturnPixels();
                _held.Clear();
            }
        }
    }

    /// <summary>Batch: the images, labels (and soft targets) as tensors; the pixels go back to the pool.</summary>
    private sealed class TensorStage(BatchLoader loader, long epoch, CancellationToken token)
        : Stage<Pending, Batch>(loader.BatchStats, capacity: 1, token)
    {
        private Pending? _current;

        protected override async ValueTask ProcessAsync(Pending pending)
        {
            var o = loader._options;
            int n = pending.Count, length = o.Preprocess.TensorLength;
            Stats.In(n);
            _current = pending;
            Batch batch;
            try
            {
                var images = empty(n, o.Preprocess.Channels, o.Preprocess.Height, o.Preprocess.Width);
                images.data<float>().CopyFrom(pending.Pixels.AsSpan(0, n * length), 0, 0);
                var labels = new long[n];
                var ids = new string[n];
                for (int i = 0; i < n; i++)
                {
                    labels[i] = pending.Samples[i].Label;
                    ids[i] = pending.Samples[i].Id;
                }
                Tensor? targets = null;
                if (o.SoftTargets is { } soft)
                {
                    int c = soft.NumClasses;
                    var dist = new float[(long)n * c];
                    for (int i = 0; i < n; i++) soft.Fill(pending.Samples[i].Id, dist.AsSpan(i * c, c));
                    targets = tensor(dist, [n, c]);
                }
                batch = new Batch(images, tensor(labels), epoch, pending.Index, targets) { Ids = ids };
            }
            finally
            {
                pending.ReturnPixels();
                _current = null;
            }
            Stats.Out(n);
            await EmitAsync(batch).ConfigureAwait(false);
        }

        protected override void Discard(Pending item) => item.ReturnPixels();

        protected override void DiscardOutput(Batch item) => item.Dispose();

        public void ReturnHeld() => _current?.ReturnPixels();
    }
}
