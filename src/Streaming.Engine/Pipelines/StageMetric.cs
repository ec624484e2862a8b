using System.Globalization;

namespace Streaming.Engine.Pipelines;

/// <summary>
/// A metric that a stage reports in run.json: its key, its kind (which decides how it prints and how a replay compares it)
/// and its row in <c>run</c>'s result table, if it has one. Declared once, in <see cref="PipelineMetrics"/>.
/// </summary>
public sealed record StageMetric(string Key, MetricKind Kind)
{
    /// <summary>Its row in <c>run</c>'s result table; null for a metric that only run.json holds.</summary>
    public TableRow? Row { get; init; }

    /// <summary>A value as the table and the report print it: a fraction as a percent with two decimals, anything else as a number.</summary>
    public string Format(double value) => Kind == MetricKind.Fraction
        ? (value * 100).ToString("F2", CultureInfo.InvariantCulture) + "%"
        : value.ToString("0.####", CultureInfo.InvariantCulture);

    /// <summary>This metric's value among a run's, formatted, or "-" when the run did not report it.</summary>
    public string Format(IReadOnlyDictionary<string, double> metrics) => metrics.TryGetValue(Key, out double v) ? Format(v) : "-";
}
