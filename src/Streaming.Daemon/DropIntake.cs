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
    /// <summary>A shard scored again after recovery found its score shard lost: its drop was finished long ago and stays where it is.</summary>
    public bool Rescore => Lost is not null;
    /// <summary>The done record whose score shard was lost (for a re-score).</summary>
    public DoneShard? Lost;
    /// <summary>A shard of it could not be written (a full disk): the drop stays in the inbox to be taken again.</summary>
    public bool Retry;
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

    /// <summary>Whether a drop is still in the inbox (a dangling link counts).</summary>
    public static bool Present(string path) => File.Exists(path) || Directory.Exists(path) || new FileInfo(path).LinkTarget is not null;

    private readonly RetryCounter _retries = new(config.RetryTries, config.RetryWindow);

    /// <summary>
    /// Turns a drop into shards and sends the new ones to the graph; true when any went in. No drop can stop the
    /// daemon: whatever goes wrong while taking it in sends it to quarantine with the reason, except an I/O error,
    /// which may pass (a drop still being written, a disk briefly away): it is tried again on later polls, and
    /// quarantined once it has failed <c>intake.retry_tries</c> times over at least <c>intake.retry_seconds</c>.
    /// </summary>
    public async Task<bool> StartAsync(DropWork work, Func<string, string, WorkShard, Task> send, CancellationToken stop)
    {
        var drop = work.Drop;
        var keyed = new List<(string Path, string Input, string Key)>();
        try
        {
            var shards = drop.Kind switch
            {
                DropKind.Shard => [(drop.Path, drop.Name)],
                DropKind.Folder or DropKind.Tar => await IngestAsync(drop, stop).ConfigureAwait(false),
                DropKind.ShardList => ReadShardList(drop),
                DropKind.Unreadable => throw new StreamingException(drop.Error ?? "could not be listed"),
                DropKind.Special => throw new StreamingException("not a regular file (a named pipe, socket or device): the daemon reads files and folders only"),
                DropKind.Link => throw new StreamingException($"a symbolic link (to {new FileInfo(drop.Path).LinkTarget}): the daemon does not follow links in its inbox; move the data itself in"),
                _ => throw new StreamingException($"not something the daemon takes: drop image shards (.parquet), folders of images, tar shards (.tar) or shard lists (.list, .txt: one shard path a line)"),
            };
            // Shards are known by their content: one dropped again (under any name) is not scored or counted twice,
            // and a drop whose shard is being scored under another name waits for it.
            foreach (var (path, input) in shards)
            {
                string key = Hashing.Sha256File(path);
                if (_inFlightKeys.ContainsKey(key)) return false;
                if (!ledger.IsDone(key) && !keyed.Any(k => k.Key == key)) keyed.Add((path, input, key));
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            throw;
        }
        catch (IOException e) when (DaemonStatus.IsDiskFull(e))
        {
            Forget(drop);
            status.WriteFailed(e, "ingesting a drop");
            log.LogWarning("drop {Drop}: {Error}; waiting for disk space", drop.Name, e.Message);
            return false;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Forget(drop);
            if (!Present(drop.Path)) return false; // gone: nothing to do
            var (tries, since, giveUp) = _retries.Failed(drop.Name);
            if (giveUp) await LockedAsync(() => Quarantine(work, $"failed {tries} times over {since.TotalSeconds:F0} s, last: {e.Message}")).ConfigureAwait(false);
            else log.LogWarning("drop {Drop}: {Error}; will try again ({Tries} of {Max})", drop.Name, e.Message, tries, config.RetryTries);
            return false;
        }
        catch (Exception e)
        {
            _retries.Clear(drop.Name);
            await LockedAsync(() => Quarantine(work, e is StreamingException ? e.Message : $"{e.GetType().Name}: {e.Message}")).ConfigureAwait(false);
            return false;
        }
        _retries.Clear(drop.Name);
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

    /// <summary>
    /// Sends again the shards whose score shards recovery found missing or torn, from where their input lies now: where
    /// it was scored from, or <c>processed/</c> for a shard dropped as it was. One whose input is gone is reported.
    /// </summary>
    public async Task RescoreAsync(IReadOnlyList<DoneShard> lost, Func<string, string, WorkShard, Task> send, CancellationToken stop)
    {
        foreach (var d in lost)
        {
            string? source = d.Source is { } s && File.Exists(s) ? s
                : d.Source is { } moved && File.Exists(Path.Combine(paths.Processed, Path.GetFileName(moved))) ? Path.Combine(paths.Processed, Path.GetFileName(moved))
                : null;
            if (source is null)
            {
                log.LogError("shard {Input} of drop {Drop} cannot be scored again: its input is gone ({Source}); its images are missing from D-hat", d.Input, d.Drop, d.Source ?? "not recorded");
                continue;
            }
            var work = new DropWork(new Drop(d.Drop, source, DropKind.Shard)) { Lost = d, Sent = true, Pending = 2 };
            string key = Hashing.Sha256File(source);
            _inFlightKeys[key] = 0;
            status.ShardSent();
            await send(source, d.Input, new WorkShard(work, source, d.Input, key, Stopwatch.StartNew())).ConfigureAwait(false);
            await LockedAsync(() =>
            {
                if (Interlocked.Decrement(ref work.Pending) == 0) Finish(work);
            }).ConfigureAwait(false);
            log.LogInformation("shard {Input} of drop {Drop}: scoring it again from {Source}", d.Input, d.Drop, source);
        }
    }

    private readonly ConcurrentQueue<DoneShard> _rescoreAgain = new();

    /// <summary>Re-scores that hit a full disk, to be sent again (<see cref="RescoreAsync"/>) once it takes writes.</summary>
    public IReadOnlyList<DoneShard> TakeRescores()
    {
        var list = new List<DoneShard>();
        while (_rescoreAgain.TryDequeue(out var d)) list.Add(d);
        return list;
    }

    /// <summary>Under the gate: a shard whose files could not be written; its drop stays in the inbox and is taken again later.</summary>
    public void ShardNotWritten(WorkShard shard)
    {
        _inFlightKeys.TryRemove(shard.Key, out _);
        status.ShardCollected();
        shard.Drop.Retry = true;
        if (Interlocked.Decrement(ref shard.Drop.Pending) == 0) Finish(shard.Drop);
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

    /// <summary>
    /// Ingests a folder or tar drop into shards under <c>ingested/</c>, in a folder named by the drop and its content:
    /// a drop with the same name but other content is ingested anew, and names that sanitize alike never share one.
    /// </summary>
    private async Task<List<(string, string)>> IngestAsync(Drop drop, CancellationToken stop)
    {
        string fingerprint = Fingerprint(drop);
        if (!ledger.State.Ingested.TryGetValue(fingerprint, out var folder) || !File.Exists(Path.Combine(paths.State, folder, DatasetManifest.FileName)))
        {
            folder = Path.Combine("ingested", $"{Sanitize(drop.Name)}-{fingerprint[..16]}");
            string target = Path.Combine(paths.State, folder), temp = AtomicFile.TempFor(target);
            if (Directory.Exists(temp)) Directory.Delete(temp, true);
            if (Directory.Exists(target)) Directory.Delete(target, true);
            var clock = Stopwatch.StartNew();
            var result = await Ingestor.RunAsync(ImageSource.Open(drop.Path, limits: config.SourceLimits), temp,
                new IngestOptions { Name = drop.Name, Workers = config.Scoring.DecodeWorkers, IdPrefix = drop.Name + "/", MaxPixels = config.SourceLimits.MaxImagePixels },
                new Progress<IngestProgress>(_ => status.Beat($"ingesting drop {drop.Name}")), stop).ConfigureAwait(false);
            if (result.Manifest.Rows == 0) { Directory.Delete(temp, true); throw new StreamingException($"no images in it ({result.Read} read, {result.Ignored} ignored)"); }
            AtomicFile.CommitDirectory(temp, target);
            await LockedAsync(() => ledger.RecordIngested(fingerprint, folder)).ConfigureAwait(false);
            log.LogInformation("drop {Drop}: ingested {Rows} images into {Shards} shards in {Seconds:F1} s", drop.Name, result.Manifest.Rows, result.Manifest.Shards.Count, clock.Elapsed.TotalSeconds);
        }
        var manifest = DatasetManifest.Load(Path.Combine(paths.State, folder));
        return manifest.Shards.Select(s => (Path.Combine(paths.State, folder, s.File), $"{drop.Name}/{s.File}")).ToList();
    }

    /// <summary>A drop's name and content as one SHA-256: a tar's bytes, or a folder's files (relative path and bytes, links as the walk takes them).</summary>
    internal static string Fingerprint(Drop drop)
    {
        using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        void Add(string text) => hash.AppendData(System.Text.Encoding.UTF8.GetBytes(text + "\n"));
        Add(drop.Name);
        if (Directory.Exists(drop.Path))
            foreach (var file in FolderWalk.Files(drop.Path, drop.Path))
            {
                Add(Path.GetRelativePath(drop.Path, file));
                Add(Hashing.Sha256File(file));
            }
        else Add(Hashing.Sha256File(drop.Path));
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private static string Sanitize(string name)
    {
        var chars = name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' ? c : '_').ToArray();
        string s = new(chars);
        return s.Length > 64 ? s[..64] : s;
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
            else if (!FileKind.IsRegularFile(path)) missing.Add($"line {lineNo}: {path} is not a regular file");
            else result.Add((path, $"{drop.Name}:{Path.GetFileName(path)}"));
        }
        if (missing.Count > 0) throw new StreamingException($"shard list with {missing.Count} bad entries (nothing from it was scored): {string.Join("; ", missing.Take(5))}{(missing.Count > 5 ? "; ..." : "")}");
        if (result.Count == 0) throw new StreamingException("shard list names no shards");
        return result;
    }

    /// <summary>Under the gate: moves a finished drop out of the inbox (to processed/, or to quarantine/ if a shard of it failed).</summary>
    private void Finish(DropWork work)
    {
        if (work.Retry && work.Lost is { } lost)
        {
            // A re-score that could not be written either: tried again once the disk takes writes.
            _rescoreAgain.Enqueue(lost);
            return;
        }
        if (work.Retry)
        {
            // Not finished: forgotten, so that the next listing takes it again (its recorded shards are not scored twice).
            _drops.TryRemove(work.Drop.Name, out _);
            log.LogWarning("drop {Drop} stays in the inbox: a shard of it could not be written", work.Drop.Name);
            return;
        }
        if (work.Rescore)
        {
            if (work.Failures.Count > 0) log.LogError("shard of drop {Drop} could not be scored again: {Errors}", work.Drop.Name, string.Join("; ", work.Failures));
            return;
        }
        _drops.TryRemove(work.Drop.Name, out _);
        status.DropFinished();
        if (work.Failures.Count > 0)
        {
            Quarantine(work, string.Join("\n", work.Failures));
            return;
        }
        if (Present(work.Drop.Path))
        {
            string target = Unique(Path.Combine(paths.Processed, work.Drop.Name));
            Move(work.Drop.Path, target);
        }
        log.LogDebug("drop {Drop} done in {Seconds:F1} s", work.Drop.Name, work.Clock.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// Under the gate. When the drop cannot be moved out of the inbox (permissions), it is recorded as quarantined all
    /// the same and left where it is, never taken again by this process.
    /// </summary>
    private void Quarantine(DropWork work, string reason)
    {
        if (_drops.TryRemove(work.Drop.Name, out _)) status.DropFinished(); // (not when Finish already did)
        string target = Unique(Path.Combine(paths.Quarantine, work.Drop.Name));
        try
        {
            if (Present(work.Drop.Path)) Move(work.Drop.Path, target);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _stuck[work.Drop.Name] = 0;
            reason += $"\n(it could not be moved out of the inbox: {e.Message}; it stays there and is not taken again until the daemon restarts)";
        }
        AtomicFile.WriteAllText(target + ".reason.txt", reason + "\n");
        ledger.RecordQuarantined(new QuarantinedDrop(work.Drop.Name, Path.GetRelativePath(paths.State, target), reason, DateTime.UtcNow));
        log.LogWarning("drop {Drop} quarantined: {Reason}", work.Drop.Name, reason);
    }

    private readonly ConcurrentDictionary<string, byte> _stuck = new(StringComparer.Ordinal);

    /// <summary>A drop quarantined in place (it could not be moved): never taken again by this process.</summary>
    public bool Stuck(Drop drop) => _stuck.ContainsKey(drop.Name);

    /// <summary>
    /// Moves a drop with rename(2), which renames the entry itself: a link (to a file or a folder, dangling or not) is
    /// moved as the link, never followed. (File.Move follows a link to a folder, finds no file and fails.)
    /// Across file systems (the state folder on another disk), a link is made again there and the original removed, and a
    /// file is copied; a folder cannot be moved across (as before) and stays, quarantined in place.
    /// </summary>
    private static void Move(string from, string to)
    {
        try
        {
            Posix.Rename(from, to);
        }
        catch (IOException e) when (e.HResult == Posix.CrossDevice)
        {
            if (new FileInfo(from).LinkTarget is string target)
            {
                File.CreateSymbolicLink(to, target);
                File.Delete(from); // the link, not its target
            }
            else if (File.Exists(from)) File.Move(from, to);
            else throw;
        }
    }

    /// <summary>A name not taken in the destination (by a file, a folder, a link of any kind, or a reason file).</summary>
    private static string Unique(string path)
    {
        string candidate = path;
        for (int i = 1; Present(candidate) || File.Exists(candidate + ".reason.txt"); i++)
            candidate = $"{path}.{i}";
        return candidate;
    }
}
