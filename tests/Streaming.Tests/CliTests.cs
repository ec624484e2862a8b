using SkiaSharp;
using Streaming.Cli;
using Streaming.Cli.Shared;
using Streaming.Core.Datasets;
using Xunit;

namespace Streaming.Tests;

/// <summary>The command line end to end, in process. Console redirection is global, so these run one at a time.</summary>
[Collection(nameof(ProcessState))]
public class CliTests
{
    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        Console.SetOut(stdout);
        Console.SetError(stderr);
        try
        {
            int code = await StreamingCli.RunAsync(args);
            return (code, stdout.ToString(), stderr.ToString());
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
        }
    }

    [Theory]
    [InlineData("ingest")]
    [InlineData("split")]
    [InlineData("inspect")]
    public async Task EveryVerb_HasHelp(string verb)
    {
        var (code, output, _) = await Run(verb, "--help");
        Assert.Equal(0, code);
        Assert.Contains("Usage:", output);
        Assert.Contains(verb, output);
    }

    [Fact]
    public async Task UsageError_ExitsWith2()
    {
        var (code, _, err) = await Run("ingest", "--source");
        Assert.Equal((int)ExitCode.Usage, code);
        Assert.Contains("error:", err);
    }

    [Fact]
    public async Task Ingest_Split_Inspect_EndToEnd()
    {
        using var tmp = new TempDir();
        var (code, output, _) = await Run("ingest", "--source", TestPaths.MiniIdxTrain, "--out", tmp.Sub("train"), "--shard-size", "100");
        Assert.Equal(0, code);
        Assert.Contains("ingested 300 images", output);

        (code, output, _) = await Run("split", "--dataset", tmp.Sub("train"), "--labeled-per-class", "5", "--seed", "1",
            "--labeled", tmp.Sub("d"), "--unlabeled", tmp.Sub("u"));
        Assert.Equal(0, code);
        Assert.Contains("labeled D:", output);
        Assert.Equal(50, DatasetManifest.Load(tmp.Sub("d")).Rows);

        string sheet = tmp.Sub("sheet.png");
        (code, output, _) = await Run("inspect", tmp.Sub("d"), "--sample", "12", "--out", sheet);
        Assert.Equal(0, code);
        Assert.Contains("Ankle boot", output);
        Assert.Contains("images    50", output);
        Assert.Contains("contact sheet of 12 images", output);
        using var image = SKBitmap.Decode(sheet);
        Assert.True(image.Width > 300 && image.Height > 300);
        // Not a blank page: the sheet has dark pixels (images and text) and white background.
        var colors = new HashSet<uint>();
        for (int y = 0; y < image.Height; y += 3) for (int x = 0; x < image.Width; x += 3) colors.Add((uint)image.GetPixel(x, y));
        Assert.True(colors.Count > 20);
    }

    [Fact]
    public async Task Ingest_BadFolder_ExitsZero_WithASummary()
    {
        using var tmp = new TempDir();
        var (code, output, _) = await Run("ingest", "--source", TestPaths.Bad, "--out", tmp.Sub("bad"));
        Assert.Equal(0, code);
        Assert.Contains("quarantined 6", output);
        Assert.Contains("not-an-image", output);
    }

    [Fact]
    public async Task Ingest_MissingSource_OneLine_ExitCode3()
    {
        using var tmp = new TempDir();
        var (code, _, err) = await Run("ingest", "--source", tmp.Sub("nope"), "--out", tmp.Sub("o"));
        Assert.Equal((int)ExitCode.BadInput, code);
        Assert.Single(err.Trim().Split('\n'));
        Assert.Contains("nope: no such file or folder", err);
    }

    [Fact]
    public async Task Inspect_NotADataset_OneLine_ExitCode3()
    {
        var (code, _, err) = await Run("inspect", TestPaths.Photos);
        Assert.Equal((int)ExitCode.BadInput, code);
        Assert.Contains("dataset.json", err);
    }
}

/// <summary>
/// The tests that use what belongs to the whole process: the console (they redirect it), and libtorch run in this
/// process (its intra-op threads, kernels and memory layout are the process's, see <c>Kernels.AcquireAsync</c>). They
/// run one at a time and never beside another collection. <see cref="TestHygieneTests"/> holds every test class that
/// runs libtorch in-process to it.
/// </summary>
[CollectionDefinition(nameof(ProcessState), DisableParallelization = true)]
public sealed class ProcessState;
