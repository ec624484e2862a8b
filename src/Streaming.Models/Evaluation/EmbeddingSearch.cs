using Streaming.Core.Shards;
using TorchSharp;
using static TorchSharp.torch;

namespace Streaming.Models.Evaluation;

/// <summary>
/// Nearest neighbours by cosine similarity, brute force: both sets centred on the references' mean and L2-normalized,
/// then the queries in chunks multiplied by the references' transpose (one matrix product a chunk), keeping each
/// query's best reference. Exact, and memory stays at one chunk of <c>chunk x references</c> similarities.
/// <para>
/// Centring matters for features read after a ReLU (every value non-negative): uncentred, any two images of one class
/// have cosines near 1, and a threshold cannot tell a duplicate from a look-alike.
/// </para>
/// </summary>
public static class EmbeddingSearch
{
    /// <summary>For every row of <paramref name="queries"/>, the index of its most similar row of <paramref name="references"/> and that cosine.</summary>
    public static (int[] Best, float[] Cosine) Nearest(FeatureSet queries, FeatureSet references, Device? device = null, int chunk = 4096)
    {
        if (queries.Dim != references.Dim) throw new ArgumentException($"features of {queries.Dim} and {references.Dim} values cannot be compared");
        device ??= CPU;
        var best = new int[queries.Count];
        var cosine = new float[queries.Count];
        if (queries.Count == 0 || references.Count == 0)
        {
            Array.Fill(best, -1);
            Array.Fill(cosine, float.NaN);
            return (best, cosine);
        }
        Compute.Kernels.OnThisThread();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var raw = tensor(references.Values, [references.Count, references.Dim]).to(device);
        var mean = raw.mean([0], keepdim: true);
        var r = nn.functional.normalize(raw - mean, dim: 1).t().contiguous();
        for (int start = 0; start < queries.Count; start += chunk)
        {
            using var inner = NewDisposeScope();
            int n = Math.Min(chunk, queries.Count - start);
            var q = nn.functional.normalize(tensor(queries.Values.AsSpan(start * queries.Dim, n * queries.Dim).ToArray(), [n, queries.Dim]).to(device) - mean, dim: 1);
            var (values, indexes) = q.mm(r).max(1);
            values.cpu().data<float>().CopyTo(cosine, start);
            var idx = indexes.cpu().data<long>().ToArray();
            for (int i = 0; i < n; i++) best[start + i] = (int)idx[i];
        }
        return (best, cosine);
    }
}
