using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Streaming.Core;
using Streaming.Core.Datasets;
using Streaming.Core.Ingest;

namespace Streaming.Daemon;

/// <summary>A drop being worked on: its shards in the graph, and what failed.</summary>
internal sealed class DropWork(Drop drop)
{
    public Drop Drop { get; } = drop;
    /// <summary>Shards sent and not yet collected, plus one held by the sender until it has sent them all.</summary>
    public int Pending;
    public bool Sent;
    public List<string> Failures { get; } = [];
    public Stopwatch Clock { get; } = Stopwatch.StartNew();
}

/// <summary>One shard of a drop, as the graph carries it (its tag): known by its content's SHA-256.</summary>
internal sealed record WorkShard(DropWork Drop, string Path, string Input, string Key, Stopwatch Clock);

/// <summary>
/// Takes drops from the inbox: turns each into shards (ingesting folders and tars, reading shard lists), sends the new
/// ones to the graph (known by content: a shard dropped twice, under any name, is scored once), and when a drop is
/// finished moves it to processed/, or to quarantine/ with the reason when it could not be taken or a shard of it
/// failed. Moving drops and recording quarantines runs under the gate.
/// </summary>
internal sealed class DropIntake(DaemonConfig config, DaemonPaths paths, DaemonStatus status, HeapLedger ledger, MemoryGovernor memory,
    SemaphoreSlim gate, ILogger log)
{
    private readonly ConcurrentDictionary<string, DropWork> _drops = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _inFlightKeys = new(StringComparer.Ordinal);

    /// <summary>No drop is being worked on.</summary>
    public bool Idle => _drops.IsEmpty;

    /// <summary>The work for a drop listed now (a new one, or the one already under way).</summary>
    public DropWork Work(Drop drop) => _drops.GetOrAdd(drop.Name, _ => new DropWork(drop));

    /// <summary>A drop that vanished or could not be read before any of it was sent: forget it, look again next time.</summary>
    public void Forget(Drop drop) => _drops.TryRemove(drop.Name, out _);

    /// <summary>Turns a drop into shards and sends the new ones to the graph; true when any went in.</summary>
    public async Task<bool> StartAsync(DropWork work, Func<string, string, WorkShard, Task> send, CancellationToken stop)
    {
        var drop = work.Drop;
        List<(string Path, string Input)> shards;
        try
        {
            shards = drop.Kind switch
            {
                DropKind.Shard => [(drop.Path, drop.Name)],
                DropKind.Folder or DropKind.Tar => await IngestAsync(drop, stop).ConfigureAwait(false),
                DropKind.ShardList => ReadShardList(drop),
                _ => throw new StreamingException($"not something the daemon takes: drop image shards (.parquet), folders of images, tar shards (.tar) or shard lists (.list, .txt: one shard path a line)"),
            };
        }
        catch (StreamingException e)
        {
            await LockedAsync(() => Quarantine(work, e.Message)).ConfigureAwait(false);
            return false;
        }
        // Shards are known by their content: one dropped again (under any name) is not scored or counted twice,
        // and a drop whose shard is being scored under another name waits for it.
        var keyed = new List<(string Path, string Input, string Key)>();
        foreach (var (path, input) in shards)
        {
            string key = Hashing.Sha256File(path);
            if (_inFlightKeys.ContainsKey(key)) return false;
            if (!ledger.IsDone(key) && !keyed.Any(k => k.Key == key)) keyed.Add((path, input, key));
        }
        work.Sent = true;
        work.Pending = 1; // the sender's hold: the drop cannot finish before every shard is sent
        foreach (var (path, input, key) in keyed)
        {
            await memory.WaitForMemoryAsync(stop).ConfigureAwait(false);
            Interlocked.Increment(ref work.Pending);
            _inFlightKeys[key] = 0;
            status.ShardSent();
            await send(path, input, new WorkShard(work, path, input, key, Stopwatch.StartNew())).ConfigureAwait(false);
        }
        if (keyed.Count == 0) log.LogInformation("drop {Drop}: every shard in it was scored before; nothing to do", drop.Name);
        await LockedAsync(() =>
        {
            if (Interlocked.Decrement(ref work.Pending) == 0) Finish(work);
        }).ConfigureAwait(false);
        return keyed.Count > 0;
    }

    /// <summary>Under the gate: a shard of a drop is done (recorded, or failed).</summary>
    public void ShardFinished(WorkShard shard, string? failure)
    {
        _inFlightKeys.TryRemove(shard.Key, out _);
        status.ShardCollected();
        if (failure is not null) shard.Drop.Failures.Add($"{shard.Input}: {failure}");
        if (Interlocked.Decrement(ref shard.Drop.Pending) == 0) Finish(shard.Drop);
    }

    private async Task LockedAsync(Action action)
    {
        await gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            action();
        }
        finally
        {
            gate.Release();
        }
    }

    private async Task<List<(string, string)>> IngestAsync(Drop drop, CancellationToken stop)
    {
        if (!ledger.State.Ingested.TryGetValue(drop.Name, out var folder) || !File.Exists(Path.Combine(paths.State, folder, DatasetManifest.FileName)))
        {
            folder = Path.Combine("ingested", drop.Name.Replace('.', '_'));
            string target = Path.Combine(paths.State, folder), temp = AtomicFile.TempFor(target);
            if (Directory.Exists(temp)) Directory.Delete(temp, true);
            if (Directory.Exists(target)) Directory.Delete(target, true);
            var clock = Stopwatch.StartNew();
            var result = await Ingestor.RunAsync(ImageSource.Open(drop.Path), temp, new IngestOptions { Name = drop.Name, Workers = config.DecodeWorkers, IdPrefix = drop.Name + "/" },
                cancellationToken: stop).ConfigureAwait(false);
            if (result.Manifest.Rows == 0) { Directory.Delete(temp, true); throw new StreamingException($"no images in it ({result.Read} read, {result.Ignored} ignored)"); }
            AtomicFile.CommitDirectory(temp, target);
            await LockedAsync(() => ledger.RecordIngested(drop.Name, folder)).ConfigureAwait(false);
            log.LogInformation("drop {Drop}: ingested {Rows} images into {Shards} shards in {Seconds:F1} s", drop.Name, result.Manifest.Rows, result.Manifest.Shards.Count, clock.Elapsed.TotalSeconds);
        }
        var manifest = DatasetManifest.Load(Path.Combine(paths.State, folder));
        return manifest.Shards.Select(s => (Path.Combine(paths.State, folder, s.File), $"{drop.Name}/{s.File}")).ToList();
    }

    private static List<(string, string)> ReadShardList(Drop drop)
    {
        string dir = Path.GetDirectoryName(drop.Path)!;
        var result = new List<(string, string)>();
        var missing = new List<string>();
        int lineNo = 0;
        foreach (var raw in File.ReadLines(drop.Path))
        {
            lineNo++;
            string line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            string path = Path.IsPathRooted(line) ? line : Path.GetFullPath(Path.Combine(dir, line));
            if (!File.Exists(path)) missing.Add($"line {lineNo}: {path}");
            else if (!path.EndsWith(".parquet", StringComparison.OrdinalIgnoreCase)) missing.Add($"line {lineNo}: {path} is not a .parquet image shard");
            else result.Add((path, $"{drop.Name}:{Path.GetFileName(path)}"));
        }
        if (missing.Count > 0) throw new StreamingException($"shard list with {missing.Count} bad entries (nothing from it was scored): {string.Join("; ", missing.Take(5))}{(missing.Count > 5 ? "; ..." : "")}");
        if (result.Count == 0) throw new StreamingException("shard list names no shards");
        return result;
    }

    /// <summary>Under the gate: moves a finished drop out of the inbox (to processed/, or to quarantine/ if a shard of it failed).</summary>
    private void Finish(DropWork work)
    {
        _drops.TryRemove(work.Drop.Name, out _);
        Interlocked.Decrement(ref status.Pending);
        if (work.Failures.Count > 0)
        {
            Quarantine(work, string.Join("\n", work.Failures));
            return;
        }
        if (work.Drop.Kind == DropKind.ShardList || File.Exists(work.Drop.Path) || Directory.Exists(work.Drop.Path))
        {
            string target = Unique(Path.Combine(paths.Processed, work.Drop.Name));
            Move(work.Drop.Path, target);
        }
        log.LogDebug("drop {Drop} done in {Seconds:F1} s", work.Drop.Name, work.Clock.Elapsed.TotalSeconds);
    }

    /// <summary>Under the gate.</summary>
    private void Quarantine(DropWork work, string reason)
    {
        if (_drops.TryRemove(work.Drop.Name, out _)) Interlocked.Decrement(ref status.Pending); // (not when Finish already did)
        string target = Unique(Path.Combine(paths.Quarantine, work.Drop.Name));
        if (File.Exists(work.Drop.Path) || Directory.Exists(work.Drop.Path)) Move(work.Drop.Path, target);
        File.WriteAllText(target + ".reason.txt", reason + "\n");
        ledger.RecordQuarantined(new QuarantinedDrop(work.Drop.Name, Path.GetRelativePath(paths.State, target), reason, DateTime.UtcNow));
        log.LogWarning("drop {Drop} quarantined: {Reason}", work.Drop.Name, reason);
    }

    private static void Move(string from, string to)
    {
        if (Directory.Exists(from)) Directory.Move(from, to);
        else File.Move(from, to);
    }

    private static string Unique(string path)
    {
        string candidate = path;
        for (int i = 1; File.Exists(candidate) || Directory.Exists(candidate) || File.Exists(candidate + ".reason.txt"); i++)
            candidate = $"{path}.{i}";
        return candidate;
    }
}
