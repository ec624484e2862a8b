using Microsoft.Extensions.Logging.Abstractions;
using Streaming.Core.Compute;
using Streaming.Daemon;
using Xunit;

namespace Streaming.Tests;

/// <summary>
/// The daemon's heaps ledger and what its endpoints show, in process: the endpoints read the view the ledger last
/// published, never the ledger itself, so a slow checkpoint or snapshot under the daemon's gate never stalls them.
/// </summary>
public class DaemonLedgerTests
{
    private static (HeapLedger Ledger, DaemonStatus Status, DaemonPaths Paths) NewLedger(TempDir tmp)
    {
        string teacher = tmp.Sub("teacher.safetensors");
        File.WriteAllBytes(teacher, [0]);
        var config = DaemonConfig.Load(null, [$"teacher={teacher}", $"inbox={tmp.Sub("inbox")}", $"state={tmp.Sub("state")}",
            "scoring.k=4", "scoring.top_p=2", "scoring.p=1", "http.listen=off"]);
        var paths = new DaemonPaths(config.State);
        foreach (var dir in paths.All) Directory.CreateDirectory(dir);
        var status = new DaemonStatus();
        return (new HeapLedger(config, paths, status, NullLogger.Instance), status, paths);
    }

    private static DoneShard Done(int i, long rows) =>
        new($"key-{i}", $"in-{i}.parquet", $"drop-{i}", $"scores/s-{i}.parquet", "00", rows, 1, 0.1, DateTime.UtcNow);

    [Fact]
    public async Task Ledger_PublishesEveryChange_AndTheEndpointsShowOnlyWhatWasPublished()
    {
        using var tmp = new TempDir();
        var (ledger, status, _) = NewLedger(tmp);
        Assert.Same(DaemonView.Empty, status.View);
        await ledger.RecoverAsync("sha", ["cat", "say \"hi\""], new ComputeEnvironment(), CancellationToken.None);
        Assert.Equal(new[] { "cat", "say \"hi\"" }, status.View.Classes);
        Assert.Equal(new[] { 0, 0 }, status.View.Fill);

        ledger.RecordDone(Done(0, 40));
        ledger.RecordDone(Done(1, 2));
        var view = status.View;
        Assert.Equal((42L, 2L, 2), (view.ImagesScored, view.ImagesQuarantined, view.ShardsDone));
        Assert.Equal(new[] { "in-0.parquet", "in-1.parquet" }, view.RecentShards.Select(s => s.Input));
        Assert.True(ledger.IsDone("key-1"));

        ledger.RecordQuarantined(new QuarantinedDrop("bad.tar", "quarantine/bad.tar", "not a tar", DateTime.UtcNow));
        Assert.Equal(1, status.View.DropsQuarantined);
        Assert.Equal(2, status.View.ShardsDone);

        // The endpoints render the published view, whatever the ledger holds: a view published by hand is what they show.
        status.Publish(view with { ImagesScored = 7, Fill = [1, 2], K = 4 });
        string metrics = status.Metrics();
        Assert.Contains("streaming_images_scored_total 7\n", metrics);
        Assert.Contains("streaming_heap_fill_ratio{class=\"say \\\"hi\\\"\"} 0.5\n", metrics);
        Assert.Contains("streaming_shards_done_total 2\n", metrics);
    }

    [Fact]
    public async Task Ledger_AfterARestart_PublishesTheTotalsOfEveryRun()
    {
        using var tmp = new TempDir();
        var (first, _, _) = NewLedger(tmp);
        await first.RecoverAsync("sha", ["a", "b"], new ComputeEnvironment(), CancellationToken.None);
        first.RecordDone(Done(0, 10));
        await first.CheckpointAsync();

        var (second, status, _) = NewLedger(tmp);
        await second.RecoverAsync("sha", ["a", "b"], new ComputeEnvironment(), CancellationToken.None);
        Assert.Equal((10L, 1, 1), (status.View.ImagesScored, status.View.ShardsDone, status.View.Restarts));
        Assert.True(second.IsDone("key-0"));

        var (other, _, _) = NewLedger(tmp);
        var e = await Assert.ThrowsAsync<Streaming.Core.StreamingException>(() => other.RecoverAsync("another-teacher", ["a", "b"], new ComputeEnvironment(), CancellationToken.None));
        Assert.Contains("other settings", e.Message);
    }
}
