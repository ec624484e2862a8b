using System.Buffers;
using Streaming.Core.Datasets;

namespace Streaming.Engine.Scoring.Stages;

/// <summary>
/// What flows through the scoring graph: up to one inference batch of one shard's images, as columns. The read stage
/// fills the ids and the encoded images, decode the pixels (each image once, into its slot of one pooled buffer),
/// batch the model's input (the images that decoded, contiguous, in shard order), infer the classes and
/// probabilities. Batches never span two shards; the last batch of a shard says so (and carries the shard's error,
/// if reading failed). Every buffer is pooled: <see cref="ImageBatchPool"/> hands batches out and takes them back.
/// </summary>
public sealed class ImageBatch
{
    private readonly ImageBatchPool _pool;

    internal ImageBatch(ImageBatchPool pool, int capacity, int topP)
    {
        _pool = pool;
        Capacity = capacity;
        TopP = topP;
        Ids = new string[capacity];
        Ends = new int[capacity];
        Rows = new int[capacity];
        Decoded = new bool[capacity];
        Bad = new QuarantineEntry?[capacity];
        Classes = new int[capacity * topP];
        Probs = new float[capacity * topP];
    }

    public int Capacity { get; }
    public int TopP { get; }

    public ShardJob Shard { get; internal set; } = null!;
    /// <summary>The index in its shard of this batch's first image.</summary>
    public long FirstRow { get; internal set; }
    /// <summary>Images in the batch.</summary>
    public int Count { get; internal set; }
    /// <summary>This is the shard's last batch (it may hold no images: a marker).</summary>
    public bool LastOfShard { get; internal set; }
    /// <summary>Why the shard could not be read to its end (on its last batch); its rows are then dropped.</summary>
    public string? ShardError { get; internal set; }

    public string[] Ids { get; }
    /// <summary>The encoded images end to end (pooled); image i ends at <see cref="Ends"/>[i].</summary>
    internal byte[] Encoded = [];
    internal int[] Ends { get; }
    /// <summary>Decoded pixels, one slot of the model's input size per image (pooled); after the batch stage the images
    /// that decoded fill the first <see cref="Good"/> slots, in shard order.</summary>
    internal float[]? Pixels;
    /// <summary>After decode: the images that decoded. <see cref="Rows"/>[g] is the index in the batch of the g-th.</summary>
    public int Good { get; internal set; }
    internal int[] Rows { get; }
    /// <summary>Which images decoded (decode writes it, one entry per image, from any worker).</summary>
    internal bool[] Decoded { get; }
    /// <summary>Why each image that did not decode did not (decode writes it; batch collects it, in order, into <see cref="Quarantined"/>).</summary>
    internal QuarantineEntry?[] Bad { get; }
    /// <summary>The images that did not decode, with why.</summary>
    public List<QuarantineEntry> Quarantined { get; } = [];
    /// <summary>After infer: each good image's top-P' classes and probabilities, <see cref="TopP"/> a row, highest first.</summary>
    public int[] Classes { get; }
    public float[] Probs { get; }

    public ReadOnlySpan<byte> Image(int i) => Encoded.AsSpan(i == 0 ? 0 : Ends[i - 1], Ends[i] - (i == 0 ? 0 : Ends[i - 1]));

    /// <summary>Bytes of encoded images held.</summary>
    internal int EncodedLength => Count == 0 ? 0 : Ends[Count - 1];

    /// <summary>Appends one image (the read stage).</summary>
    internal void Add(string id, ReadOnlySpan<byte> image)
    {
        int at = EncodedLength;
        if (Encoded.Length < at + image.Length)
        {
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(at + image.Length, Encoded.Length * 2));
            Encoded.AsSpan(0, at).CopyTo(bigger);
            ReturnEncoded();
            Encoded = bigger;
        }
        image.CopyTo(Encoded.AsSpan(at));
        Ids[Count] = id;
        Ends[Count] = at + image.Length;
        Count++;
    }

    /// <summary>The encoded images are no longer needed (after decode).</summary>
    internal void ReturnEncoded()
    {
        if (Encoded.Length > 0) ArrayPool<byte>.Shared.Return(Encoded);
        Encoded = [];
    }

    /// <summary>Takes a pixel buffer for this batch's images (decode), from the pool's own.</summary>
    internal void RentPixels(int sampleLength) => Pixels = _pool.RentPixels(checked(Capacity * sampleLength));

    /// <summary>The pixels are no longer needed (after inference).</summary>
    internal void ReturnPixels()
    {
        if (Pixels is not null) _pool.ReturnPixels(Pixels);
        Pixels = null;
    }

    internal void Reset(ShardJob shard, long firstRow)
    {
        Shard = shard;
        FirstRow = firstRow;
        Count = 0;
        Good = 0;
        LastOfShard = false;
        ShardError = null;
        Quarantined.Clear();
        Array.Clear(Ids);
        Array.Clear(Bad);
    }
}

/// <summary>
/// The scoring graph's batches: a fixed set reused for the life of the graph, so that steady-state scoring allocates
/// no batch and no column. <see cref="ReturnAll"/> takes back whatever a stopped graph still held, on every path.
/// </summary>
public sealed class ImageBatchPool
{
    private readonly Lock _gate = new();
    private readonly Stack<ImageBatch> _free = new();
    // Pixel buffers, one batch's input each, held only between decode and inference (a few at a time), kept for the
    // graph's life: ArrayPool's would drop and reallocate these 0.8 MB arrays now and then (its trimming).
    private readonly Stack<float[]> _pixels = new();
    private readonly HashSet<ImageBatch> _out = [];
    private readonly int _capacity, _topP;

    public ImageBatchPool(int capacity, int topP)
    {
        _capacity = capacity;
        _topP = topP;
    }

    /// <summary>Batches handed out and not returned.</summary>
    public int Outstanding
    {
        get { lock (_gate) return _out.Count; }
    }

    public ImageBatch Rent(ShardJob shard, long firstRow)
    {
        ImageBatch batch;
        lock (_gate)
        {
            batch = _free.Count > 0 ? _free.Pop() : new ImageBatch(this, _capacity, _topP);
            _out.Add(batch);
        }
        batch.Reset(shard, firstRow);
        return batch;
    }

    internal float[] RentPixels(int length)
    {
        lock (_gate)
        {
            while (_pixels.TryPop(out var buffer))
                if (buffer.Length == length) return buffer;
        }
        return new float[length];
    }

    internal void ReturnPixels(float[] buffer)
    {
        lock (_gate) _pixels.Push(buffer);
    }

    /// <summary>Returns a batch and its pooled buffers; returning one twice does nothing.</summary>
    public void Return(ImageBatch batch)
    {
        lock (_gate)
        {
            if (!_out.Remove(batch)) return;
            batch.ReturnEncoded();
            batch.ReturnPixels();
            batch.Reset(null!, 0);
            _free.Push(batch);
        }
    }

    /// <summary>Returns every batch still out (a graph that stopped with items inside).</summary>
    public void ReturnAll()
    {
        List<ImageBatch> left;
        lock (_gate) left = [.. _out];
        foreach (var b in left) Return(b);
    }
}
