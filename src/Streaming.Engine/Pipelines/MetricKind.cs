namespace Streaming.Engine.Pipelines;

/// <summary>What a stage's metric measures, which decides how it prints and how a replay compares it.</summary>
public enum MetricKind
{
    /// <summary>An accuracy or a precision: printed as a percent; a replay on other kernels holds it to a few points.</summary>
    Fraction,

    /// <summary>A count or a size: printed as a number; a replay on other kernels holds it to a few percent.</summary>
    Count,

    /// <summary>A throughput (images a second): a timing, so no replay compares it and no stage's log line shows it.</summary>
    Rate,
}
