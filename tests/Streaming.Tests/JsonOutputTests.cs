using System.Diagnostics;
using Xunit;

namespace Streaming.Tests;

/// <summary>--json output checked as scripts read it: stdout alone, through Debian's jq.</summary>
internal static class JsonCheck
{
    /// <summary>Runs a verb, checks it succeeded, and returns its stdout.</summary>
    public static async Task<string> StdoutOf(params string[] args)
    {
        var (code, stdout, stderr) = await CliProcess.RunSplitAsync(args);
        Assert.True(code == 0, $"streaming {string.Join(' ', args)}: exit {code}\n{stdout}{stderr}");
        return stdout;
    }

    /// <summary>Debian's jq (which .ci/run installs) over <paramref name="json"/>: -e makes a false or null result fail.</summary>
    public static async Task Jq(string json, string filter)
    {
        Prerequisite.Jq.Require();
        var info = new ProcessStartInfo("jq", ["-e", filter]) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        using var jq = Process.Start(info)!;
        await jq.StandardInput.WriteAsync(json);
        jq.StandardInput.Close();
        string output = await jq.StandardOutput.ReadToEndAsync() + await jq.StandardError.ReadToEndAsync();
        await jq.WaitForExitAsync();
        Assert.True(jq.ExitCode == 0, $"jq -e '{filter}' gave {output.Trim()} (exit {jq.ExitCode}) on:\n{json}");
    }
}

/// <summary>Machine-readable output (issue 21): each verb's --json is one JSON document on stdout that jq reads, with messages on stderr.</summary>
public partial class DaemonTests
{
    [Fact]
    public async Task Json_OfInspectSelectEvalAndEnv_IsOneDocumentThatJqReads()
    {
        await JsonCheck.Jq(await JsonCheck.StdoutOf("inspect", Unlabeled, "--json"), ".images == 300 and (.shards | length) == 20 and (.classes | length) == 10 and (.classes | map(.count) | add) == 300");

        string scores = _tmp.Sub("json-scores");
        var (code, output) = await CliProcess.RunAsync("score", "--teacher", Teacher, "--data", Unlabeled, "--out", scores, "--top-p", "5", "--batch", "16", "--threads", "1");
        Assert.True(code == 0, output);
        await JsonCheck.Jq(await JsonCheck.StdoutOf("select", "--scores", scores, "-k", "8", "-p", "2", "--out", _tmp.Sub("json-select"), "--json"),
            ".k == 8 and .p == 2 and .selected > 0 and .selected <= 80 and .selected == (.counts | add) and (.counts | length) == 10 and .rows_scored == 300 and .seconds >= 0");

        await JsonCheck.Jq(await JsonCheck.StdoutOf("eval", "--model", Teacher, "--data", Unlabeled, "--threads", "1", "--json", "--out", _tmp.Sub("json-eval.json")),
            ".images == 300 and .top1 >= 0 and .top1 <= 1 and (.per_class | length) == 10");

        await JsonCheck.Jq(await JsonCheck.StdoutOf("env", "--json"), ".compute.isa != null");
    }
}
