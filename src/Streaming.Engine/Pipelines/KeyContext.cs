namespace Streaming.Engine.Pipelines;

/// <summary>
/// What a stage's key parameters are made from: the typed settings, the kernels' key (<c>Kernels.KernelKey</c>), and how a
/// source (a file or a folder) and a file are hashed. Tests give fixed hashes, so that keys are pinned without reading data.
/// </summary>
internal sealed record KeyContext(PipelineSpec Spec, string Kernels, Func<string, string> SourceSha256, Func<string, string> FileSha256)
{
    /// <summary>The manifest's seed as the keys have always serialized it (an unsigned 64-bit number).</summary>
    public ulong Seed => (ulong)Spec.Seed;

    /// <summary>Parameters in ordinal order, as the key serializes them.</summary>
    public static SortedDictionary<string, object> Of(params (string Key, object Value)[] items)
    {
        var d = new SortedDictionary<string, object>(StringComparer.Ordinal);
        foreach (var (k, v) in items) d[k] = v;
        return d;
    }
}
