using Streaming.Core;
using Streaming.Models.Compute;
using TorchSharp;
using Xunit;

namespace Streaming.Tests;

/// <summary>
/// libtorch's compute settings have one owner in a process (issue 28): a job holds them with a lease, a job that
/// wants others waits, a nested job that wants others is refused, and every thread that does a job's tensor work runs
/// with the job's thread count.
/// </summary>
[Collection(nameof(ProcessState))]
public class ComputeLeaseTests
{
    /// <summary>Runs <paramref name="action"/> on a new native thread (not the pool's) and returns its result.</summary>
    private static T OnNewThread<T>(Func<T> action)
    {
        T result = default!;
        var thread = new Thread(() => result = action());
        thread.Start();
        thread.Join();
        return result;
    }

    /// <summary>Starts a job that is not nested in the caller's (the caller's lease does not flow into it).</summary>
    private static Task<ComputeLease> Independently(Func<Task<ComputeLease>> start)
    {
        using (ExecutionContext.SuppressFlow()) return Task.Run(start);
    }

    [Fact]
    public void LibtorchKeepsItsThreadCount_PerNativeThread()
    {
        // Why a lease alone is not enough: set_num_threads on one thread leaves another thread, seen before, as it was.
        using var ready = new ManualResetEventSlim();
        using var go = new ManualResetEventSlim();
        int seenAfter = 0;
        var a = new Thread(() =>
        {
            torch.get_num_threads(); // libtorch sets up a native thread's count on its first use (to the last count set anywhere)
            torch.set_num_threads(1);
            ready.Set();
            go.Wait();
            seenAfter = torch.get_num_threads();
        });
        a.Start();
        ready.Wait();
        OnNewThread(() => { torch.set_num_threads(2); return 0; });
        go.Set();
        a.Join();
        Assert.Equal(1, seenAfter);
    }

    [Fact]
    public async Task UnderALease_EveryThreadThatCallsOnThisThread_RunsWithTheLeaseThreads()
    {
        using var hold = await Kernels.AcquireAsync(2);
        // A thread that another job left at one thread, as a pool thread could be.
        using var ready = new ManualResetEventSlim();
        using var go = new ManualResetEventSlim();
        int before = 0, after = 0;
        var stale = new Thread(() =>
        {
            torch.get_num_threads();
            torch.set_num_threads(1);
            ready.Set();
            go.Wait();
            before = torch.get_num_threads();
            Kernels.OnThisThread();
            after = torch.get_num_threads();
        });
        stale.Start();
        ready.Wait();
        go.Set();
        stale.Join();
        Assert.Equal(1, before);
        Assert.Equal(2, after);
        Assert.Equal(new ComputeSettings(2, hold.Settings.ChannelsLast), Kernels.Held);
    }

    [Fact]
    public async Task AJobWithOtherSettings_WaitsUntilTheHolderLetsGo_AndNeverChangesThemUnderIt()
    {
        var first = await Kernels.AcquireAsync(2);
        var second = Independently(() => Kernels.AcquireAsync(1));
        await Task.Delay(200);
        Assert.False(second.IsCompleted);
        Assert.Equal(2, Kernels.Held!.Threads);
        Assert.Equal(2, OnNewThread(() => { Kernels.OnThisThread(); return torch.get_num_threads(); }));
        // One that agrees with the holder joins it... unless someone waits already (first come, first served).
        var agreeing = Independently(() => Kernels.AcquireAsync(2));
        await Task.Delay(100);
        Assert.False(agreeing.IsCompleted);
        first.Dispose();
        using (var got = await second)
        {
            Assert.Equal(1, Kernels.Held!.Threads);
            Assert.Equal(1, OnNewThread(() => { Kernels.OnThisThread(); return torch.get_num_threads(); }));
            Assert.False(agreeing.IsCompleted);
        }
        using (await agreeing) Assert.Equal(2, Kernels.Held!.Threads);
        Assert.Null(Kernels.Held);
    }

    [Fact]
    public async Task ANestedJob_SharesItsCallersSettings_AndIsRefusedOthers()
    {
        using var outer = await Kernels.AcquireAsync(2);
        using (var same = await Kernels.AcquireAsync(2)) Assert.Equal(2, same.Threads);
        var error = await Assert.ThrowsAsync<StreamingException>(() => Kernels.AcquireAsync(1));
        Assert.Contains("inside one that holds 2 threads", error.Message);
        // A task the job starts is part of the job.
        await Assert.ThrowsAsync<StreamingException>(() => Task.Run(() => Kernels.AcquireAsync(1)));
        Assert.Equal(2, Kernels.Held!.Threads);
    }

    [Fact]
    public async Task AWaitingJob_CanBeCancelled_AndLeavesTheQueue()
    {
        using var first = await Kernels.AcquireAsync(2);
        using var cancel = new CancellationTokenSource();
        var waiting = Independently(() => Kernels.AcquireAsync(1, cancellationToken: cancel.Token));
        await Task.Delay(100);
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        using var again = await Independently(() => Kernels.AcquireAsync(2));
        Assert.Equal(2, again.Threads);
    }
}
