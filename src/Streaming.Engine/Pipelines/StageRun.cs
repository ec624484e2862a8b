namespace Streaming.Engine.Pipelines;

/// <summary>A running stage's progress: a fraction when its total is known, images/s, ETA, items done and a detail (a loss).</summary>
internal delegate void RunningReport(double? fraction, double? rate, TimeSpan? eta, long? items, string? detail);

/// <summary>
/// One pipeline run as its stages see it: the settings, the stages in order, the records of those done so far (their
/// folders), the log, and progress bound to the stage running.
/// </summary>
internal sealed class StageRun(PipelineSpec spec, IReadOnlyList<PipelineStage> stages, Action<string> log, IProgress<StageProgress>? progress,
    CancellationToken cancellationToken)
{
    private readonly Dictionary<PipelineStage, StageRecord> _done = [];
    private (int Index, PipelineStage? Stage) _current;

    public PipelineSpec Spec { get; } = spec;
    public IReadOnlyList<PipelineStage> Stages { get; } = stages;
    public Action<string> Log { get; } = log;
    public CancellationToken CancellationToken { get; } = cancellationToken;

    /// <summary>The manifest's seed, as the stages pass it on.</summary>
    public ulong Seed => (ulong)Spec.Seed;

    /// <summary>A finished stage's record.</summary>
    public StageRecord Record(PipelineStage stage) =>
        _done.TryGetValue(stage, out var r) ? r : throw new InvalidOperationException($"stage {stage.Name} has not run (the graph reads it too early)");

    /// <summary>A finished stage's folder.</summary>
    public string Folder(PipelineStage stage) => Record(stage).Folder;

    /// <summary>D: the labeled set of the split.</summary>
    public string D => Path.Combine(Folder(PipelineGraph.Split), PipelineGraph.LabeledFolder);

    /// <summary>U as the stages after split read it: dedup's, when the run has it, else split's.</summary>
    public string U => Path.Combine(Folder(PipelineGraph.UnlabeledOf(Spec)), PipelineGraph.UnlabeledFolder);

    /// <summary>The test set, ingested.</summary>
    public string Test => Folder(PipelineGraph.IngestTest);

    /// <summary>"[3/10]": the running stage's place in the run.</summary>
    public string Position => $"[{_current.Index}/{Stages.Count}]";

    /// <summary>Marks <paramref name="stage"/> as the one running; reports from now on name it.</summary>
    public void Begin(PipelineStage stage) => _current = (IndexOf(stage) + 1, stage);

    /// <summary>Keeps a finished stage's record, for the stages after it.</summary>
    public void Done(StageRecord record, PipelineStage stage) => _done[stage] = record;

    /// <summary>Reports the running stage's state.</summary>
    public void Report(StageState state, string? summary = null) =>
        progress?.Report(new StageProgress(_current.Index, Stages.Count, _current.Stage!.Name, state, Summary: summary));

    /// <summary>
    /// A reporter of progress of type <typeparamref name="T"/>, bound to the stage running when it is made: a report that
    /// comes late (a timer's, after its stage ended) still names its own stage, which the view then ignores. It reports
    /// in the reporting thread: <see cref="Progress{T}"/> would post each report to the thread pool, where a late one could
    /// land after its stage had ended and be taken for the next stage's.
    /// </summary>
    public IProgress<T> Reporter<T>(Action<RunningReport, T> report)
    {
        var (index, stage) = _current;
        int count = Stages.Count;
        RunningReport running = (fraction, rate, eta, items, detail) =>
            progress?.Report(new StageProgress(index, count, stage!.Name, StageState.Running, fraction, rate, eta, items, detail));
        return new Direct<T>(p => report(running, p));
    }

    /// <summary>The time left at <paramref name="rate"/> items a second, when it is known.</summary>
    public static TimeSpan? EtaOf(long done, long total, double rate) =>
        rate > 0 && total >= done ? TimeSpan.FromSeconds((total - done) / rate) : null;

    private int IndexOf(PipelineStage stage)
    {
        for (int i = 0; i < Stages.Count; i++)
            if (ReferenceEquals(Stages[i], stage)) return i;
        return -1;
    }

    private sealed class Direct<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
