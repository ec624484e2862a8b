using System.Diagnostics;
using System.Threading.Tasks.Dataflow;

namespace Streaming.Core.Dataflow;

/// <summary>
/// A stage of a bounded dataflow graph (TPL Dataflow): one block that takes items one at a time, in the order they
/// arrive (a stage with several workers spreads each item's work over them), and hands its results to the next stage
/// with <c>SendAsync</c>, so that a full next stage holds it up. Its time splits three ways in <see cref="Stats"/>:
/// busy on its own work, blocked handing a result to a full next stage, and starved waiting for input.
/// </summary>
/// <remarks>
/// Every stage of the scoring graph and of the training loader is one of these, so that each reports the same
/// counters: a slow model shows the stages before it as blocked, not starved, and a slow decoder shows the model
/// as starved. A stage that fails faults the next one (and the graph), and stops taking input.
/// </remarks>
public abstract class Stage<TIn>
{
    private readonly ActionBlock<TIn> _block;
    private long _emitTicks; // time spent handing results on, during the item being processed

    protected Stage(string name, int workers, int capacity, CancellationToken cancellationToken)
        : this(new StageStats(name, workers), capacity, cancellationToken)
    {
    }

    /// <summary>A stage that adds to counters it is given (a graph rebuilt for every epoch, whose counters run on).</summary>
    protected Stage(StageStats stats, int capacity, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Stats = stats;
        CancellationToken = cancellationToken;
        _block = new ActionBlock<TIn>(RunAsync, new ExecutionDataflowBlockOptions
        {
            BoundedCapacity = capacity,
            MaxDegreeOfParallelism = 1,
            CancellationToken = cancellationToken,
        });
        Stats.QueueDepth = () => _block.InputCount;
    }

    public StageStats Stats { get; }

    /// <summary>Where the previous stage (or the driver) sends items.</summary>
    public ITargetBlock<TIn> Input => _block;

    /// <summary>Completes when every item taken has been processed and handed on; faults with the stage's error.</summary>
    public Task Completion => _block.Completion;

    protected CancellationToken CancellationToken { get; }

    /// <summary>
    /// Whether <see cref="ProcessAsync"/> reports its busy time itself (<c>Stats.Busy</c>), as a stage whose workers run in
    /// parallel inside one item does; otherwise the time in <see cref="ProcessAsync"/> outside handing on counts as busy.
    /// </summary>
    protected virtual bool ReportsBusy => false;

    /// <summary>The stage's work on one item.</summary>
    protected abstract ValueTask ProcessAsync(TIn item);

    /// <summary>What to do with an item the stage took but will never process (the graph stopped): return its buffers.</summary>
    protected virtual void Discard(TIn item)
    {
    }

    /// <summary>No more input: the stage finishes what it has, then completes.</summary>
    public void Complete() => _block.Complete();

    /// <summary>Stops the stage with an error.</summary>
    public void Fault(Exception e) => ((IDataflowBlock)_block).Fault(e);

    private async Task RunAsync(TIn item)
    {
        if (CancellationToken.IsCancellationRequested)
        {
            Discard(item);
            return;
        }
        long start = Stopwatch.GetTimestamp();
        _emitTicks = 0;
        try
        {
            await ProcessAsync(item).ConfigureAwait(false);
        }
        finally
        {
            if (!ReportsBusy) Stats.Busy(Stopwatch.GetTimestamp() - start - _emitTicks);
        }
    }

    /// <summary>Counts time spent handing results on (blocked), for every worker, since none of them can go on meanwhile.</summary>
    private protected void Emitted(long ticks)
    {
        _emitTicks += ticks;
        Stats.Blocked(ticks * Stats.Workers);
    }
}

/// <summary>A <see cref="Stage{TIn}"/> with an output: it hands results on with <see cref="EmitAsync"/>.</summary>
public abstract class Stage<TIn, TOut> : Stage<TIn>
{
    private ITargetBlock<TOut>? _next;

    protected Stage(string name, int workers, int capacity, CancellationToken cancellationToken) : base(name, workers, capacity, cancellationToken)
    {
    }

    protected Stage(StageStats stats, int capacity, CancellationToken cancellationToken) : base(stats, capacity, cancellationToken)
    {
    }

    /// <summary>Sends this stage's results to a plain block (the end of a graph whose consumer is not a stage).</summary>
    public void LinkTo(ITargetBlock<TOut> target)
    {
        _next = target;
        Completion.ContinueWith(t =>
        {
            if (t.IsFaulted) target.Fault(t.Exception!.Flatten().InnerExceptions.FirstOrDefault(e => e is not OperationCanceledException) ?? t.Exception.InnerException!);
            else if (t.IsCanceled) target.Fault(new OperationCanceledException("an earlier stage was cancelled"));
            else target.Complete();
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>Sends this stage's results to <paramref name="next"/>, and its completion or failure with them.</summary>
    public void LinkTo(Stage<TOut> next)
    {
        _next = next.Input;
        Completion.ContinueWith(t =>
        {
            if (t.IsFaulted) next.Fault(t.Exception!.Flatten().InnerExceptions.FirstOrDefault(e => e is not OperationCanceledException) ?? t.Exception.InnerException!);
            else if (t.IsCanceled) next.Fault(new OperationCanceledException("an earlier stage was cancelled"));
            else next.Complete();
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>Hands a result to the next stage, waiting while it is full (blocked time); the item is discarded if the next stage has stopped.</summary>
    protected async ValueTask EmitAsync(TOut item)
    {
        var next = _next ?? throw new InvalidOperationException($"stage {Stats.Name} is not linked to a next stage");
        long start = Stopwatch.GetTimestamp();
        bool sent;
        try
        {
            sent = await next.SendAsync(item, CancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            DiscardOutput(item);
            throw;
        }
        Emitted(Stopwatch.GetTimestamp() - start);
        if (!sent)
        {
            DiscardOutput(item);
            throw new OperationCanceledException($"stage {Stats.Name}: the next stage stopped taking items");
        }
    }

    /// <summary>What to do with a result the next stage would not take: return its buffers.</summary>
    protected virtual void DiscardOutput(TOut item)
    {
    }
}
