using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Streaming.Core;
using Xunit;

namespace Streaming.Tests;

/// <summary>
/// Durability seen from the kernel (issue 18): `score` and the daemon run under strace, and every rename that commits
/// a file (from a name ending in <see cref="AtomicFile.TempSuffix"/>) must come after an fsync of that file and before
/// an fsync of the folder it lands in. Without both, a power loss can leave a name pointing at nothing.
/// </summary>
public partial class DaemonTests
{
    private static string[] Strace(string output) =>
        StraceWith("-f", "-y", "-qq", "-e", "signal=none", "-e", "trace=fsync,fdatasync,rename,renameat,renameat2", "-o", output);

    /// <summary>strace with <paramref name="flags"/>, to run a command under; fails the test in one line when strace is missing.</summary>
    private static string[] StraceWith(params string[] flags)
    {
        Prerequisite.Strace.Require();
        return ["strace", .. flags];
    }

    [GeneratedRegex("""^(\d+)\s+(.*)$""")]
    private static partial Regex TraceLine();

    [GeneratedRegex("""^(fsync|fdatasync)\(\d+<(.*)>\)\s+=\s+0$""")]
    private static partial Regex SyncCall();

    [GeneratedRegex("""^rename(?:at2?)?\((?:[^,]+, )?"((?:\\.|[^"\\])*)", (?:[^,]+, )?"((?:\\.|[^"\\])*)"(?:, [^)]*)?\)\s+=\s+0$""")]
    private static partial Regex RenameCall();

    /// <summary>The committed files of a trace, each checked: an fsync of the temporary file before its rename, an fsync of the folder after.</summary>
    private static List<string> CheckCommits(string trace)
    {
        // Calls cut in two by another thread ("<unfinished ...>", "<... NAME resumed>") are joined first.
        var pending = new Dictionary<string, string>();
        var calls = new List<string>();
        foreach (var raw in File.ReadLines(trace))
        {
            var m = TraceLine().Match(raw);
            if (!m.Success) continue;
            string pid = m.Groups[1].Value, rest = m.Groups[2].Value;
            if (rest.EndsWith("<unfinished ...>", StringComparison.Ordinal))
            {
                pending[pid] = rest[..^"<unfinished ...>".Length].TrimEnd();
                continue;
            }
            if (rest.StartsWith("<... ", StringComparison.Ordinal))
            {
                int end = rest.IndexOf("resumed>", StringComparison.Ordinal);
                rest = (pending.Remove(pid, out var head) ? head : "") + rest[(end + "resumed>".Length)..];
            }
            calls.Add(rest);
        }
        var synced = new List<(int At, string Path)>();
        var renames = new List<(int At, string From, string To)>();
        for (int i = 0; i < calls.Count; i++)
        {
            if (SyncCall().Match(calls[i]) is { Success: true } s) synced.Add((i, s.Groups[2].Value));
            else if (RenameCall().Match(calls[i]) is { Success: true } r) renames.Add((i, Regex.Unescape(r.Groups[1].Value), Regex.Unescape(r.Groups[2].Value)));
        }
        var committed = new List<string>();
        foreach (var (at, from, to) in renames.Where(r => r.From.EndsWith(AtomicFile.TempSuffix, StringComparison.Ordinal)))
        {
            // A symbolic link has no data of its own to fsync: it is made durable with its folder, which the next check asks for.
            bool link = File.Exists(to) && new FileInfo(to).LinkTarget is not null || Directory.Exists(to) && new DirectoryInfo(to).LinkTarget is not null;
            Assert.True(link || synced.Any(s => s.At < at && s.Path == from), $"{from} was renamed to {to} without an fsync of it first");
            string folder = Path.GetDirectoryName(to)!;
            Assert.True(synced.Any(s => s.At > at && s.Path == folder), $"{to}: its folder {folder} was not fsynced after the rename");
            committed.Add(to);
        }
        return committed;
    }

    [Fact]
    public async Task EveryCommit_IsAnFsyncedFileRenamed_ThenItsFolderFsynced_InScoreAndTheDaemon()
    {
        string scoreTrace = _tmp.Sub("score.strace"), scored = _tmp.Sub("scored");
        var (code, output) = await CliProcess.RunUnderAsync(Strace(scoreTrace), null,
            ["score", "--teacher", Teacher, "--data", Unlabeled, "--out", scored, "-k", "8", "-p", "2", "--top-p", "5", "--batch", "16", "--threads", "1"]);
        Assert.True(code == 0, output);
        var commits = CheckCommits(scoreTrace);
        Assert.Equal(Shards.Length, commits.Count(c => c.StartsWith(Path.Combine(scored, "scores") + "/", StringComparison.Ordinal)));
        Assert.Contains(Path.Combine(scored, "scoring.json"), commits);
        Assert.Contains(commits, c => c.StartsWith(Path.Combine(scored, "selection"), StringComparison.Ordinal));

        string inbox = _tmp.Sub("inbox-strace"), state = _tmp.Sub("state-strace"), daemonTrace = _tmp.Sub("daemon.strace");
        Directory.CreateDirectory(inbox);
        using var traced = StartDaemonUnder(Strace(daemonTrace), Teacher, inbox, state, "--set", "checkpoint.every_shards=2", "--set", "snapshot.every_shards=2");
        try
        {
            // Under strace the daemon's pid is not the child's: daemon.json says which it is.
            var (pid, _) = await DaemonInfoAsync(state);
            Drop(Shards[0], inbox);
            Drop(Shards[1], inbox);
            await WaitFor(() => DoneCount(state) == 2 && Directory.Exists(Path.Combine(state, "snapshots", "000001")), "two shards and a snapshot", state);
            using (var kill = System.Diagnostics.Process.Start("kill", ["-TERM", pid.ToString(CultureInfo.InvariantCulture)])) await kill!.WaitForExitAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await traced.WaitForExitAsync(timeout.Token);
        }
        finally
        {
            if (!traced.HasExited) traced.Kill(entireProcessTree: true);
        }
        commits = CheckCommits(daemonTrace);
        Assert.Equal(2, commits.Count(c => c.StartsWith(Path.Combine(state, "scores") + "/", StringComparison.Ordinal)));
        Assert.Contains(commits, c => c.StartsWith(Path.Combine(state, "heaps") + "/", StringComparison.Ordinal));
        Assert.Contains(Path.Combine(state, Streaming.Daemon.DaemonState.FileName), commits);
        Assert.Contains(commits, c => c.StartsWith(Path.Combine(state, "snapshots"), StringComparison.Ordinal));
    }

    [Fact]
    public async Task DaemonJson_IsWritten_WhenRecoveryRunsWhileItsRenameIsPending()
    {
        // strace holds the rename of daemon.json's temporary file for 6 s. Recovery, which removes the leftovers of writes
        // cut short from the state folder, runs meanwhile (the test checks that it does), and must leave that file alone:
        // it deleted it, the rename found nothing and daemon.json never appeared (seen once under load in the test below).
        string inbox = _tmp.Sub("inbox-info"), state = _tmp.Sub("state-info");
        Directory.CreateDirectory(inbox);
        string temp = Path.Combine(state, Streaming.Daemon.DaemonHost.InfoFile + AtomicFile.TempSuffix);
        using var traced = StartDaemonUnder(StraceWith("-f", "-qq", "-o", "/dev/null", "-P", temp, "-e", "inject=rename,renameat,renameat2:delay_enter=6s:when=1"),
            Teacher, inbox, state);
        try
        {
            // Recovery is done once the daemon watches its inbox; daemon.json's rename is still held then.
            await WaitFor(() => File.Exists(state + ".log") && File.ReadAllText(state + ".log").Contains(" watching ", StringComparison.Ordinal), "recovery", state);
            Assert.False(File.Exists(Path.Combine(state, Streaming.Daemon.DaemonHost.InfoFile)),
                "recovery ran after daemon.json was committed: the race this test is about did not happen");
            Assert.True(File.Exists(temp), "recovery deleted daemon.json's temporary file while its rename was pending");
            var (pid, _) = await DaemonInfoAsync(state);
            Assert.DoesNotContain("not written", File.ReadAllText(state + ".log"), StringComparison.Ordinal);
            using (var kill = System.Diagnostics.Process.Start("kill", ["-TERM", pid.ToString(CultureInfo.InvariantCulture)])) await kill!.WaitForExitAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await traced.WaitForExitAsync(timeout.Token);
        }
        finally
        {
            if (!traced.HasExited) traced.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task AHungFileSystem_UnderADrop_TurnsHealthUnhealthy_WhileTheLoopStandsStill()
    {
        // strace holds the daemon's first stat of each kind (statx, newfstatat...) of one drop for 6 s, as a hung NFS mount would: the inbox loop
        // stands still, and /healthz must say so once watch.stuck_seconds (2) have passed, then recover.
        string inbox = _tmp.Sub("inbox-hung"), state = _tmp.Sub("state-hung"), slow = Path.Combine(inbox, "slow" + Path.GetExtension(Shards[0]));
        Directory.CreateDirectory(inbox);
        using var traced = StartDaemonUnder(StraceWith("-f", "-qq", "-o", "/dev/null", "-P", slow, "-e", "inject=statx,newfstatat,stat,lstat:delay_enter=6s:when=1"),
            Teacher, inbox, state, "--set", "watch.stuck_seconds=2");
        try
        {
            var (pid, address) = await DaemonInfoAsync(state);
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            async Task<(int Code, string Text)> Get(string path)
            {
                using var response = await http.GetAsync(address + path);
                return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
            }
            await WaitFor(() => Get("/readyz").Result.Code == 200, "ready", state);
            Assert.Equal((200, "ok\n"), await Get("/healthz"));

            Drop(Shards[0], inbox, Path.GetFileName(slow));
            await WaitFor(() => Get("/healthz").Result.Code == 503, "/healthz to say unhealthy", state, 30);
            Assert.StartsWith("unhealthy: the inbox loop has not moved for", (await Get("/healthz")).Text);
            Assert.Equal(503, (await Get("/readyz")).Code);
            Assert.Contains("streaming_healthy 0", (await Get("/metrics")).Text);

            // The call returns, the loop moves on, the drop is scored and health is ok again.
            await WaitFor(() => DoneCount(state) == 1 && Get("/healthz").Result.Code == 200, "the loop to move again", state, 60);
            Assert.Equal((200, "ok\n"), await Get("/healthz"));
            using (var kill = System.Diagnostics.Process.Start("kill", ["-TERM", pid.ToString(CultureInfo.InvariantCulture)])) await kill!.WaitForExitAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await traced.WaitForExitAsync(timeout.Token);
        }
        finally
        {
            if (!traced.HasExited) traced.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task ADropThatKeepsFailingWithAnIOError_IsRetried_ThenQuarantined_AndTheDaemonGoesOn()
    {
        // strace makes every open of one drop fail with EIO, as a bad disk sector would: ingest fails on it each poll.
        // It must be tried intake.retry_tries times, then quarantined with its reason, while the next drop is scored.
        string inbox = _tmp.Sub("inbox-eio"), state = _tmp.Sub("state-eio"), bad = Path.Combine(inbox, "bad" + Path.GetExtension(Shards[0]));
        Directory.CreateDirectory(inbox);
        using var traced = StartDaemonUnder(StraceWith("-f", "-qq", "-o", "/dev/null", "-P", bad, "-e", "inject=openat:error=EIO"),
            Teacher, inbox, state, "--set", "intake.retry_tries=3", "--set", "intake.retry_seconds=1");
        try
        {
            var (pid, _) = await DaemonInfoAsync(state);
            Drop(Shards[0], inbox, Path.GetFileName(bad));
            Drop(Shards[1], inbox);
            string quarantine = Path.Combine(state, Streaming.Daemon.DaemonState.QuarantineLog);
            await WaitFor(() => File.Exists(quarantine) && File.ReadAllText(quarantine).Contains(Path.GetFileName(bad)), "the failing drop in quarantine", state, 60);
            await WaitFor(() => DoneCount(state) == 1, "the good drop", state, 60);
            string reason = File.ReadAllText(quarantine);
            // At least 3 tries over at least 1 s (polls come every 0.1 s, so more than 3).
            Assert.Matches(@"failed ([3-9]|[1-9][0-9]+) times over [1-9][0-9]* s, last: Input/output error", reason);
            Assert.Contains("will try again (2 of 3)", File.ReadAllText(state + ".log"));
            Assert.False(File.Exists(bad), "the drop left the inbox");
            using (var kill = System.Diagnostics.Process.Start("kill", ["-TERM", pid.ToString(CultureInfo.InvariantCulture)])) await kill!.WaitForExitAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await traced.WaitForExitAsync(timeout.Token);
        }
        finally
        {
            if (!traced.HasExited) traced.Kill(entireProcessTree: true);
        }
    }
}
