using Streaming.Cli;
using Streaming.Cli.Shared;
using Streaming.Engine.Pipelines;
using Xunit;

namespace Streaming.Tests;

/// <summary>
/// <c>run</c>'s progress: the stage list with the running stage's bar, images/s and ETA on a terminal, plain lines
/// in a log. The view is driven with a fake clock here; <see cref="Run_OnATerminal_ShowsTheStageListWithBars_AndEndsWithTheTable"/>
/// runs the real command under a pseudo-terminal.
/// </summary>
[Collection(nameof(ProcessState))]
public class RunProgressTests
{
    private const string Esc = "\u001b[";
    private static readonly string[] Names = ["ingest", "teacher", "score"];

    [Fact]
    public void OnATerminal_TheListIsRedrawnInPlace_WithTheRunningStagesBar_AndLogLinesGoAboveIt()
    {
        var now = new DateTime(2026, 11, 30, 0, 0, 0, DateTimeKind.Utc);
        var w = new StringWriter();
        var view = new StageListView(Names, w, interactive: true, now: () => now, width: 200);
        view.Report(new StageProgress(1, 3, "ingest", StageState.Reused, Summary: "reused"));
        view.Report(new StageProgress(2, 3, "teacher", StageState.Running));
        now += TimeSpan.FromSeconds(75);
        view.Report(new StageProgress(2, 3, "teacher", StageState.Running, 0.5, 2310, TimeSpan.FromSeconds(72), 1000, "loss 0.4123"));

        var lines = view.Lines();
        Assert.Equal("stages: 1 of 3 done, 01:15 elapsed", lines[0]);
        Assert.Equal("  = ingest   reused", lines[1]);
        Assert.Equal("  > teacher  [############------------]   50.0%  2,310 images/s  ETA 01:12  loss 0.4123", lines[2]);
        Assert.Equal("  . score", lines[3]);

        // Each redraw goes back over the lines it drew (4) and clears below them.
        string text = w.ToString();
        Assert.Equal(2, Count(text, Esc + "4F" + Esc + "J"));
        view.Log("a log line");
        text = w.ToString();
        int log = text.LastIndexOf("a log line\n", StringComparison.Ordinal);
        Assert.True(log > text.LastIndexOf(Esc + "4F", log, StringComparison.Ordinal), "the log line is written after the list is erased");
        Assert.EndsWith("  . score\n", text); // and the list drawn again under it

        // A late report of a stage that has ended does not bring it back; numbers redraw at most ten times a second.
        view.Report(new StageProgress(2, 3, "teacher", StageState.Done, Summary: "80.0 s; teacher 0.9"));
        int before = w.ToString().Length;
        view.Report(new StageProgress(2, 3, "teacher", StageState.Running, 0.99, 2000));
        Assert.Equal(before, w.ToString().Length);
        Assert.Equal("  + teacher  80.0 s; teacher 0.9", view.Lines()[2]);
        view.Report(new StageProgress(3, 3, "score", StageState.Running, 0.1, 100));
        int afterStart = w.ToString().Length;
        view.Report(new StageProgress(3, 3, "score", StageState.Running, 0.2, 100));
        Assert.Equal(afterStart, w.ToString().Length);
        now += TimeSpan.FromMilliseconds(150);
        view.Report(new StageProgress(3, 3, "score", StageState.Running, 0.3, 100));
        Assert.True(w.ToString().Length > afterStart);

        // Finish leaves the list on the screen: what follows is not erased.
        view.Finish();
        view.Log("the table");
        Assert.EndsWith("  > score    [#######-----------------]   30.0%  100 images/s\nthe table\n", w.ToString());
    }

    [Fact]
    public void OnANarrowTerminal_LinesAreCut_SoThatNoneWraps()
    {
        var w = new StringWriter();
        var view = new StageListView(Names, w, interactive: true, width: 30);
        view.Report(new StageProgress(2, 3, "teacher", StageState.Running, 0.5, 2310, TimeSpan.FromSeconds(72)));
        var drawn = w.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, drawn.Length);
        Assert.All(drawn, l => Assert.True(l.Length < 30, l));
    }

    [Fact]
    public void InALog_ProgressIsAPlainLineEveryFewSeconds_WithNoEscapeCodes()
    {
        var now = new DateTime(2026, 11, 30, 0, 0, 0, DateTimeKind.Utc);
        var w = new StringWriter();
        var view = new StageListView(Names, w, interactive: false, logInterval: TimeSpan.FromSeconds(5), now: () => now);
        view.Log("[2/3] teacher: running (arch=resnet20)");
        view.Report(new StageProgress(2, 3, "teacher", StageState.Running));
        for (int i = 1; i <= 20; i++)
        {
            now += TimeSpan.FromSeconds(1);
            view.Report(new StageProgress(2, 3, "teacher", StageState.Running, i / 20.0, 500, TimeSpan.FromSeconds(20 - i)));
        }
        view.Finish();
        var lines = w.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.DoesNotContain(Esc, w.ToString());
        Assert.Equal("[2/3] teacher: running (arch=resnet20)", lines[0]);
        // 20 reports over 20 s: one line every 5 s.
        Assert.Equal(4, lines.Length - 1);
        Assert.Equal("  teacher: [######------------------]   25.0%  500 images/s  ETA 00:15", lines[1]);
    }

    /// <summary>
    /// The real command under <c>script</c> (util-linux), which gives it a pseudo-terminal as a user's shell would: the
    /// list is redrawn with escape codes, a training stage shows its bar, images/s and ETA, and the table follows the
    /// final list.
    /// </summary>
    [Fact]
    public async Task Run_OnATerminal_ShowsTheStageListWithBars_AndEndsWithTheTable()
    {
        using var tmp = new TempDir();
        File.WriteAllText(tmp.Sub("mini.yaml"), PipelineTests.MiniManifest());
        string cli = Path.Combine(AppContext.BaseDirectory, "streaming.dll");
        string command = $"dotnet '{cli}' run '{tmp.Sub("mini.yaml")}' --out '{tmp.Sub("run")}' --set teacher.images=2048";
        var info = new System.Diagnostics.ProcessStartInfo("script", ["-qfec", command, tmp.Sub("terminal.log")])
            { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        using (var script = System.Diagnostics.Process.Start(info)!)
        {
            var drain = script.StandardOutput.ReadToEndAsync();
            string errors = await script.StandardError.ReadToEndAsync();
            await script.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(4));
            Assert.True(script.ExitCode == 0, await drain + errors);
        }
        string screen = File.ReadAllText(tmp.Sub("terminal.log"));
        Assert.Contains(Esc + "11F" + Esc + "J", screen);
        Assert.Matches(@"  > teacher +\[#*-*\] +\d+\.\d%  [\d,]+ images/s  ETA \d\d:\d\d  loss \d", screen);
        Assert.Contains("  > score", screen);
        int final = screen.LastIndexOf("stages: 10 of 10 done", StringComparison.Ordinal);
        Assert.True(final > 0, screen[^Math.Min(2000, screen.Length)..]);
        int table = screen.IndexOf("student, fine-tuned on D", final, StringComparison.Ordinal);
        Assert.True(table > final, "the table follows the final list");
        Assert.DoesNotContain(Esc, screen[final..]); // nothing erases the list or the table after the end
    }

    private static int Count(string text, string what)
    {
        int n = 0;
        for (int i = text.IndexOf(what, StringComparison.Ordinal); i >= 0; i = text.IndexOf(what, i + 1, StringComparison.Ordinal)) n++;
        return n;
    }
}
