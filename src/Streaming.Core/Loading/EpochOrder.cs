using System.Runtime.CompilerServices;
using Streaming.Core.Datasets;
using Streaming.Core.Shards;

namespace Streaming.Core.Loading;

/// <summary>
/// The order in which an epoch visits a dataset's labeled images, a pure function of (seed, epoch):
/// the shards are permuted, then records pass through a shuffle buffer of bounded size, so datasets far
/// larger than memory are shuffled well enough while memory stays at one buffer. Unlabeled records are
/// skipped, unless asked for (features and dedup read every image; their label is then -1). With shuffling off, the
/// order is the dataset's own.
/// </summary>
public sealed class EpochOrder
{
    private readonly string _dataset;
    private readonly DatasetManifest _manifest;
    private readonly int _bufferSize;
    private readonly bool _shuffle;
    private readonly ulong _seed;
    private readonly bool _unlabeled;

    /// <summary>Label given to an unlabeled image when <c>includeUnlabeled</c>.</summary>
    public const int NoLabel = -1;

    public EpochOrder(string dataset, ulong seed, bool shuffle = true, int bufferSize = 10_000, bool includeUnlabeled = false)
    {
        _unlabeled = includeUnlabeled;
        ArgumentOutOfRangeException.ThrowIfLessThan(bufferSize, 1);
        _dataset = dataset;
        _manifest = DatasetManifest.Load(dataset);
        _seed = seed;
        _shuffle = shuffle;
        _bufferSize = bufferSize;
    }

    public DatasetManifest Manifest => _manifest;

    /// <summary>Images in one epoch: the labeled ones, or all with <c>includeUnlabeled</c>.</summary>
    public long Count => _unlabeled ? _manifest.Rows : _manifest.Labeled;

    /// <summary>The samples of epoch <paramref name="epoch"/>, starting at position <paramref name="skip"/> (earlier ones are read but not yielded).</summary>
    public async IAsyncEnumerable<TrainingSample> ReadAsync(long epoch, long skip = 0, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var rng = new SplitMix64(StableHash.Mix(_seed ^ StableHash.Mix((ulong)epoch + 0x5DEECE66DUL)));
        var shards = _manifest.ShardPaths(_dataset).ToList();
        if (_shuffle)
            for (int i = shards.Count - 1; i > 0; i--)
            {
                int j = rng.NextInt(i + 1);
                (shards[i], shards[j]) = (shards[j], shards[i]);
            }

        long index = 0;
        var buffer = new List<(string Id, byte[] Image, int Label)>(Math.Min(_bufferSize, (int)Math.Min(int.MaxValue, Count)));
        foreach (var shard in shards)
        {
            await foreach (var r in ImageShardReader.ReadAsync(shard, cancellationToken).ConfigureAwait(false))
            {
                if (r.Label is not int label)
                {
                    if (!_unlabeled) continue;
                    label = NoLabel;
                }
                if (!_shuffle)
                {
                    if (index >= skip) yield return new TrainingSample(index, r.Id, r.Image, label);
                    index++;
                    continue;
                }
                if (buffer.Count < _bufferSize)
                {
                    buffer.Add((r.Id, r.Image, label));
                    continue;
                }
                int k = rng.NextInt(buffer.Count);
                var out_ = buffer[k];
                buffer[k] = (r.Id, r.Image, label);
                if (index >= skip) yield return new TrainingSample(index, out_.Id, out_.Image, out_.Label);
                index++;
            }
        }
        // Drain the buffer in random order (Fisher-Yates from the end).
        for (int n = buffer.Count; n > 0; n--)
        {
            int k = rng.NextInt(n);
            var item = buffer[k];
            buffer[k] = buffer[n - 1];
            if (index >= skip) yield return new TrainingSample(index, item.Id, item.Image, item.Label);
            index++;
        }
    }
}
