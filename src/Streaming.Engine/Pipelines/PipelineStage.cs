namespace Streaming.Engine.Pipelines;

/// <summary>
/// One stage of a pipeline: its name, the stages whose outputs it reads, the parameters of its cache key, the files it
/// hashes, the metrics it reports, whether a manifest switches it on, and its work. The stages are declared once, in
/// <see cref="PipelineGraph"/>; the runner, <c>run</c>'s table, <c>replay</c>, <c>report</c> and <c>profile</c> read them.
/// </summary>
public abstract class PipelineStage
{
    private readonly Func<PipelineSpec, bool> _on;

    /// <param name="on">Whether a manifest runs the stage; null: always (only dedup, control and the semi-weak stages are optional).</param>
    private protected PipelineStage(string name, IReadOnlyList<StageMetric> metrics, Func<PipelineSpec, bool>? on = null)
    {
        Name = name;
        Metrics = metrics;
        _on = on ?? (_ => true);
    }

    /// <summary>Its name: its cache folder's, and what run.json, the log and the progress list call it.</summary>
    public string Name { get; }

    /// <summary>The metrics it may report, each declared in <see cref="PipelineMetrics"/>; a stage reporting another is a bug the runner stops at.</summary>
    public IReadOnlyList<StageMetric> Metrics { get; }

    /// <summary>Whether a run of <paramref name="spec"/> has this stage.</summary>
    public bool IsOn(PipelineSpec spec) => _on(spec);

    /// <summary>The stages whose outputs it reads under <paramref name="spec"/>, each earlier in the graph: their output hashes are in its key.</summary>
    public abstract IReadOnlyList<PipelineStage> Inputs(PipelineSpec spec);

    /// <summary>
    /// The parameters of its cache key. Their names, values and value types are serialized into the key, so a change to any
    /// of them orphans every cache of the stage (<c>StageKeyTests</c> pins them).
    /// </summary>
    internal abstract SortedDictionary<string, object> Parameters(KeyContext key);

    /// <summary>The files it hashes into its output hash, which the stages after it key on and replay checks.</summary>
    internal abstract IReadOnlyList<StageOutput> Outputs(PipelineSpec spec);

    /// <summary>Its work, written into <paramref name="folder"/> (a fresh temporary folder); returns its metrics.</summary>
    internal abstract Task<MetricValues> RunAsync(StageRun run, string folder);

    /// <inheritdoc/>
    public override string ToString() => Name;
}
