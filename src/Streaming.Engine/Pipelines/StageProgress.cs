namespace Streaming.Engine.Pipelines;

/// <summary>Where a stage of a pipeline run stands.</summary>
public enum StageState { Pending, Running, Reused, Done }

/// <summary>
/// One report of a pipeline run's progress: which stage (its 1-based index among <see cref="Count"/>), its state and,
/// while it runs, how far it is (a fraction when its total is known), its images/s and ETA. <see cref="Summary"/> is
/// the one line a finished stage leaves (its time and main metrics); <see cref="Detail"/> what a running stage adds (a
/// training loss).
/// </summary>
public sealed record StageProgress(int Index, int Count, string Stage, StageState State, double? Fraction = null, double? ImagesPerSecond = null,
    TimeSpan? Eta = null, long? Items = null, string? Detail = null, string? Summary = null);
