namespace Streaming.Engine.Pipelines;

/// <summary>
/// A metric's row in <c>run</c>'s result table: its label, what its model column shows and the section it prints in. A row
/// prints when its stage is in the run, with "-" for a value the stage did not report (an ONNX teacher is not evaluated).
/// </summary>
public sealed record TableRow(string Label, TableModel Model, TableSection Section = TableSection.TopOne)
{
    /// <summary>The label instead when the run also reported this metric (the teacher's row after its pre-training on W's tags).</summary>
    public (StageMetric Metric, string Label)? After { get; init; }

    /// <summary>A second metric printed in the same cell after a slash (recall after precision).</summary>
    public StageMetric? Paired { get; init; }

    /// <summary>The label for a run with these metrics.</summary>
    public string LabelFor(IReadOnlyDictionary<string, double> metrics) =>
        After is { } after && metrics.ContainsKey(after.Metric.Key) ? after.Label : Label;
}
