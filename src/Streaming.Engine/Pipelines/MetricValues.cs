namespace Streaming.Engine.Pipelines;

/// <summary>The metrics one stage run reports, set by their declarations so that no key is spelled twice.</summary>
internal sealed class MetricValues
{
    private readonly SortedDictionary<string, double> _values = new(StringComparer.Ordinal);

    /// <summary>Sets <paramref name="metric"/>'s value.</summary>
    public double this[StageMetric metric]
    {
        set => _values[metric.Key] = value;
    }

    /// <summary>The values by key, in ordinal order, as stage.json and run.json hold them.</summary>
    public SortedDictionary<string, double> ByKey => _values;
}
