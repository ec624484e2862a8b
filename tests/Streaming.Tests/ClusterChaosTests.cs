using System.Diagnostics;
using Xunit;

namespace Streaming.Tests;

/// <summary>
/// The cluster under faults, with real processes (issue 30): one round of <c>perf/cluster-chaos.sh</c> with a fixed seed.
/// PostgreSQL of its own, 3 worker processes and a submitter over 100 shards; in one job a worker is killed with SIGKILL,
/// PostgreSQL restarts at once, a worker is frozen with SIGSTOP past its leases and resumed (its late commits refused,
/// which its log must say), the submitter is killed and
/// a new one attaches, and a worker joins late. The job must complete with every score shard and D-hat byte-identical to
/// a one-machine <c>score</c>. The perf script runs the same round 20 times with random event times.
/// </summary>
[Collection(nameof(ProcessState))]
public class ClusterChaosTests : IDisposable
{
    private readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    [Fact]
    public async Task OneJob_ThroughKill9_PostgresRestart_SigstopPastTheLease_ASubmitterKilledAndAttached_AndALateWorker_IsByteIdenticalToOneMachine()
    {
        Prerequisite.PostgreSql.Require();
        Prerequisite.FashionMnist.Require();
        Prerequisite.Python3.Require();
        var psi = new ProcessStartInfo("bash", [Path.Combine(TestPaths.Root, "perf", "cluster-chaos.sh"), "1", "7"])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = TestPaths.Root,
        };
        psi.Environment["STREAMING_DLL"] = Path.Combine(AppContext.BaseDirectory, "streaming.dll");
        psi.Environment["CHAOS_OUT"] = _tmp.Sub("chaos");
        using var script = Process.Start(psi)!;
        var stdout = script.StandardOutput.ReadToEndAsync();
        var stderr = script.StandardError.ReadToEndAsync();
        using (var limit = new CancellationTokenSource(TimeSpan.FromMinutes(8)))
        {
            try
            {
                await script.WaitForExitAsync(limit.Token);
            }
            catch (OperationCanceledException)
            {
                script.Kill(entireProcessTree: true);
                throw new TimeoutException("the chaos round did not end within 8 minutes: " + await stdout + await stderr + Logs());
            }
        }
        string output = await stdout + await stderr;
        Assert.True(script.ExitCode == 0, output + Logs());
        Assert.Contains("1 of 1 rounds byte-identical (seed 7)", output);
        // Every event happened in this round.
        foreach (var e in new[] { "kill-worker", "restart-postgres", "freeze-worker", "kill-submitter", "late-worker" })
            Assert.Contains(e, output);
        Assert.Contains("attached to job", File.ReadAllText(Path.Combine(_tmp.Sub("chaos"), "round-1", "submitter-2.log")));
        // The frozen worker came back after its leases had gone to others: its commits were refused, and its log says so.
        var fenced = System.Text.RegularExpressions.Regex.Match(output, @"round 1: (w\d) was frozen; (\d+) fencing lines in its log");
        Assert.True(fenced.Success, output);
        Assert.True(int.Parse(fenced.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture) >= 1, output + Logs());
    }

    /// <summary>The round's logs, for a failing test.</summary>
    private string Logs()
    {
        string round = Path.Combine(_tmp.Sub("chaos"), "round-1");
        return Directory.Exists(round)
            ? string.Concat(Directory.GetFiles(round, "*.log").Order().Select(f => $"\n==> {Path.GetFileName(f)} <==\n{string.Join('\n', File.ReadLines(f).TakeLast(30))}"))
            : "";
    }
}
