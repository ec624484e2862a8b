using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Streaming.Core;
using Streaming.Core.Selection;

namespace Streaming.Daemon;

/// <summary>
/// Publishes D-hat snapshots: every N new shards, every T minutes with new shards, and when the inbox goes quiet.
/// Each is a new immutable folder (the same dhat.parquet + selection.json as <c>select</c>); the <c>latest</c> link is
/// then swapped by one rename, so readers never see half a snapshot; old ones are pruned. Runs under the gate.
/// </summary>
internal sealed class SnapshotPublisher(DaemonConfig config, DaemonPaths paths, HeapLedger ledger, ILogger log)
{
    private readonly DateTime _startedUtc = DateTime.UtcNow;

    /// <summary>Shards recorded since the last snapshot.</summary>
    public int Since { get; private set; }

    /// <summary>When the heaps last changed.</summary>
    public DateTime LastChange { get; private set; } = DateTime.MinValue;

    /// <summary>After recovery: what the last snapshot does not cover yet.</summary>
    public void Recovered()
    {
        var state = ledger.State;
        Since = state.Done.Count - (state.Snapshot?.Covers ?? 0);
        if (Since > 0) LastChange = DateTime.UtcNow;
    }

    /// <summary>A shard was recorded: publish if every_shards says so.</summary>
    public async Task ShardRecordedAsync()
    {
        Since++;
        LastChange = DateTime.UtcNow;
        if (config.SnapshotEveryShards > 0 && Since >= config.SnapshotEveryShards) await PublishAsync("every_shards").ConfigureAwait(false);
    }

    /// <summary>Whether a snapshot is due now (on idle or on time); the caller then takes the gate and calls <see cref="PublishAsync"/>.</summary>
    public string? Due(bool idle)
    {
        if (Since == 0) return null;
        var last = ledger.State.Snapshot?.PublishedUtc ?? _startedUtc;
        if (idle && config.SnapshotOnIdle && DateTime.UtcNow - LastChange >= config.Poll) return "idle";
        if (config.SnapshotEvery > TimeSpan.Zero && DateTime.UtcNow - last >= config.SnapshotEvery) return "every_minutes";
        return null;
    }

    public async Task PublishAsync(string why)
    {
        if (Since == 0) return;
        var clock = Stopwatch.StartNew();
        var state = ledger.State;
        int version = (state.Snapshot?.Version ?? 0) + 1;
        string name = version.ToString("D6", CultureInfo.InvariantCulture);
        string folder = Path.Combine(paths.Snapshots, name), temp = AtomicFile.TempFor(folder);
        if (Directory.Exists(temp)) Directory.Delete(temp, true);
        if (Directory.Exists(folder)) Directory.Delete(folder, true);
        var manifest = await SelectionWriter.WriteAsync(temp, ledger.Selector, new SelectionManifest
        {
            Classes = state.Classes,
            ScoreShards = state.Done.Select(d => new ScoreShardEntry(d.ScoreFile, d.Rows, d.ScoreSha256)).ToList(),
        }, CancellationToken.None).ConfigureAwait(false);
        AtomicFile.CommitDirectory(temp, folder);
        string link = Path.Combine(paths.Snapshots, "latest"), linkTemp = AtomicFile.TempFor(link);
        File.Delete(linkTemp); // a leftover link (unlink; no error when absent)
        File.CreateSymbolicLink(linkTemp, name);
        AtomicFile.Rename(linkTemp, link);
        state.Snapshot = new SnapshotPointer(version, Path.Combine("snapshots", name), state.Done.Count, DateTime.UtcNow);
        state.Save(paths.State);
        Since = 0;
        var kept = Directory.EnumerateDirectories(paths.Snapshots).Select(Path.GetFileName).Where(n => n!.Length == 6 && n.All(char.IsAsciiDigit))
            .Order(StringComparer.Ordinal).ToList();
        foreach (var old in kept.Take(Math.Max(0, kept.Count - config.SnapshotKeep)))
            if (old != name) Directory.Delete(Path.Combine(paths.Snapshots, old!), true);
        ledger.RefreshFill();
        ledger.Publish();
        log.LogInformation("snapshot {Version} published ({Why}): {Selected} rows, {Distinct} distinct images over {Shards} shards, {Seconds:F2} s",
            name, why, manifest.Selected, manifest.DistinctImages, state.Done.Count, clock.Elapsed.TotalSeconds);
    }
}
