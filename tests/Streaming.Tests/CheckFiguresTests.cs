using System.Diagnostics;
using Xunit;

namespace Streaming.Tests;

/// <summary>
/// tools/check-figures (issue 31): every section of docs/*.md and perf/RESULTS.md that holds a measured figure names
/// committed raw output that exists. Run on the repository, and on small documents made here.
/// </summary>
public class CheckFiguresTests
{
    private static async Task<(int Code, string Output)> CheckFigures(string root, params string[] files)
    {
        Prerequisite.Python3.Require();
        var info = new ProcessStartInfo("python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(Path.Combine(TestPaths.Root, "tools", "check-figures"));
        info.ArgumentList.Add("--root");
        info.ArgumentList.Add(root);
        foreach (var f in files) info.ArgumentList.Add(f);
        using var p = Process.Start(info)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        string stderr = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, await stdout + stderr);
    }

    [Fact]
    public async Task TheRepositorysDocs_NameRawOutputForEveryFigure()
    {
        var (code, output) = await CheckFigures(TestPaths.Root);
        Assert.True(code == 0, "tools/check-figures found figures without raw output:\n" + output);
    }

    private static string Doc(TempDir tmp, string text)
    {
        Directory.CreateDirectory(tmp.Sub("docs"));
        File.WriteAllText(Path.Combine(tmp.Path, "docs", "study.md"), text);
        return "docs/study.md";
    }

    [Fact]
    public async Task ASectionWithAFigureAndNoRawPath_Fails_NamingTheSection()
    {
        using var tmp = new TempDir();
        string doc = Doc(tmp, "# Study\n\n## Accuracy\n\nThe student reaches 81.59% on seed 0.\n");
        var (code, output) = await CheckFigures(tmp.Path, doc);
        Assert.Equal(1, code);
        Assert.Equal("docs/study.md:3: section \"Accuracy\" has figures but names no raw output that exists (first figure \"81.59%\", line 5)", output.Trim());
    }

    [Fact]
    public async Task ASectionThatNamesAnExistingRawFile_Passes()
    {
        using var tmp = new TempDir();
        Directory.CreateDirectory(tmp.Sub("docs/runs/study"));
        File.WriteAllText(tmp.Sub("docs/runs/study/run.json"), "{}");
        string doc = Doc(tmp, "# Study\n\n## Accuracy\n\nThe student reaches 81.59% on seed 0 (`docs/runs/study/run.json`).\n\n" +
            "| seed | top-1 |\n| --- | ---: |\n| 0 | 81.59 |\n");
        var (code, output) = await CheckFigures(tmp.Path, doc);
        Assert.True(code == 0, output);
    }

    [Fact]
    public async Task ASectionThatNamesAMissingRawFile_Fails_NamingThePathAndTheSection()
    {
        using var tmp = new TempDir();
        string doc = Doc(tmp, "# Study\n\n## Accuracy\n\nThe student reaches 81.59% on seed 0 (`docs/runs/study/run.json`).\n");
        var (code, output) = await CheckFigures(tmp.Path, doc);
        Assert.Equal(1, code);
        Assert.Equal(
            ["docs/study.md:5: raw output \"docs/runs/study/run.json\" does not exist",
             "docs/study.md:3: section \"Accuracy\" has figures but names no raw output that exists (first figure \"81.59%\", line 5)"],
            output.Trim().Split('\n'));
    }

    [Fact]
    public async Task NumbersThatAreNotMeasurements_PassUnderTheMarker_AndASectionWithoutFiguresNeedsNoPath()
    {
        using var tmp = new TempDir();
        string doc = Doc(tmp, "# Study\n\n## Design\n\nThe selector keeps K images a class; ids are strings.\n\n## Paper\n\n" +
            "<!-- no-figures: the paper's setting, not a measurement -->\nThe paper keeps K = 16k a class, 10% of U, in 30 minutes.\n");
        var (code, output) = await CheckFigures(tmp.Path, doc);
        Assert.True(code == 0, output);

        File.AppendAllText(tmp.Sub(doc), "\nAnd a measured 4.8 min after the marker's block.\n");
        (code, output) = await CheckFigures(tmp.Path, doc);
        Assert.Equal(1, code);
        Assert.Contains("section \"Paper\" has figures", output, StringComparison.Ordinal);
    }
}
