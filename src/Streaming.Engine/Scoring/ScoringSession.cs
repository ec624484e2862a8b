using Streaming.Core.Dataflow;
using Streaming.Core.Datasets;
using Streaming.Core.Scoring;
using Streaming.Core.Selection;
using Streaming.Engine.Scoring.Stages;

namespace Streaming.Engine.Scoring;

/// <summary>
/// One scoring run, whoever hosts it (<c>score</c>, the daemon, a cluster worker, <c>profile</c>): the kernels and
/// threads, the teacher, P' and the selector (<see cref="ScoringSetup"/>), the graph and its sink, and the closing step
/// (<see cref="CloseAsync"/>: scoring.json, the quarantine list, D-hat). The host sends shards with its own tag and
/// plugs in only what differs (<see cref="IScoringHost{TTag}"/>): where a score shard goes and what a commit means.
/// </summary>
public sealed class ScoringSession<TTag> : IAsyncDisposable where TTag : notnull
{
    private readonly ScoringSetup _setup;
    private readonly bool _ownsSetup;
    private readonly ScoreGraph _graph;

    private ScoringSession(ScoringSetup setup, bool ownsSetup, IScoringHost<TTag> host, Selector? selector, CancellationToken cancellationToken)
    {
        _setup = setup;
        _ownsSetup = ownsSetup;
        Selector = selector;
        _graph = new ScoreGraph(setup.Teacher, setup.TopP, setup.Spec.Batch, setup.Spec.DecodeWorkers, new ShardSink<TTag>(host, selector), cancellationToken);
    }

    /// <summary>Holds the kernels, opens the teacher, makes the selector and starts the graph (stopped by <paramref name="cancellationToken"/>).</summary>
    public static async Task<ScoringSession<TTag>> OpenAsync(ScoringSpec spec, string teacher, IScoringHost<TTag> host, ScoringSetupOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        var setup = await ScoringSetup.OpenAsync(spec, teacher, options, cancellationToken).ConfigureAwait(false);
        try
        {
            return new ScoringSession<TTag>(setup, ownsSetup: true, host, setup.Selector, cancellationToken);
        }
        catch
        {
            setup.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Starts a graph on a setup the caller opened and keeps (the daemon: its heaps, recovered from a checkpoint, need the
    /// teacher's classes first), offering rows to <paramref name="selector"/>.
    /// </summary>
    public static ScoringSession<TTag> Start(ScoringSetup setup, IScoringHost<TTag> host, Selector? selector, CancellationToken cancellationToken) =>
        new(setup, ownsSetup: false, host, selector, cancellationToken);

    /// <summary>The kernels, teacher and P' this session scores with.</summary>
    public ScoringSetup Setup => _setup;

    /// <summary>The heaps the session's rows go to, or null.</summary>
    public Selector? Selector { get; }

    /// <summary>Each stage's counters, in graph order.</summary>
    public IReadOnlyList<StageStats> Stages => _graph.Stages;

    /// <summary>Images through the teacher so far (a cut-off shard's included).</summary>
    public long ImagesInferred => _graph.Infer.Stats.Snapshot().ItemsOut;

    /// <summary>Batches the graph holds now (zero once it has stopped, whatever stopped it).</summary>
    public int BatchesOutstanding => _graph.BatchesOutstanding;

    /// <summary>Completes when the graph has stopped; faults with the error that stopped it.</summary>
    public Task Completion => _graph.Completion;

    /// <summary>Queues a shard (waiting while the graph is full); one that cannot be read reaches the host as failed.</summary>
    /// <param name="stopReading">Ends the shard early (it then fails as "stopped"): a profile whose time is up.</param>
    public Task SendAsync(string path, string input, TTag tag, CancellationToken stopReading = default) => _graph.SendShardAsync(path, input, tag, stopReading);

    /// <summary>No more shards: waits until every shard sent has reached the host.</summary>
    public Task DrainAsync()
    {
        _graph.Complete();
        return _graph.WaitAsync();
    }

    /// <summary>Stops the graph with <paramref name="error"/> and waits; the error comes back from <see cref="Completion"/>.</summary>
    public Task FaultAsync(Exception error)
    {
        _graph.Fault(error);
        return _graph.WaitAsync();
    }

    /// <summary>Waits for the graph to stop, whatever stopped it; the caller's cancellation surfaces as such.</summary>
    public Task WaitAsync() => _graph.WaitAsync();

    /// <summary>
    /// The closing step: <c>scoring.json</c> listing <paramref name="shards"/> and <paramref name="failed"/>, the quarantine
    /// list merged from theirs, and with a selector, <c>selection/</c> (D-hat).
    /// </summary>
    public Task<SelectionManifest?> CloseAsync(string output, string dataset, IReadOnlyList<ScoredShard> shards, IReadOnlyList<FailedShard> failed,
        CancellationToken cancellationToken = default) =>
        ScoringOutputs.WriteAsync(output, ScoringOutputs.Manifest(_setup, dataset, shards, failed), Selector, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        // A graph still running (its host gave up) stops before its teacher goes.
        if (!_graph.Completion.IsCompleted)
        {
            _graph.Fault(new OperationCanceledException("the scoring session was closed"));
            try
            {
                await _graph.Completion.ConfigureAwait(false);
            }
            catch (Exception)
            {
                // the error is the host's to report; here the graph had to stop
            }
        }
        if (_ownsSetup) _setup.Dispose();
    }
}
