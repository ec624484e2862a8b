using System.Text.Json;
using Microsoft.Playwright;
using SkiaSharp;
using Streaming.Core.Shards;
using Streaming.Daemon;
using Xunit;

namespace Streaming.Tests;

/// <summary>A page in Debian's chromium (Playwright, no browser download), with every console error, page error and failed request it meets.</summary>
internal sealed class BrowserPage : IAsyncDisposable
{
    private IPlaywright _playwright = null!;
    private IBrowser _browser = null!;
    public IPage Page { get; private set; } = null!;
    public List<string> Errors { get; } = [];

    public static async Task<BrowserPage> OpenAsync(string url)
    {
        Prerequisite.Chromium.Require();
        var b = new BrowserPage { _playwright = await Playwright.CreateAsync() };
        b._browser = await b._playwright.Chromium.LaunchAsync(new() { ExecutablePath = Prerequisite.ChromiumPath, Headless = true, Args = ["--no-sandbox"] });
        b.Page = await b._browser.NewPageAsync(new() { ViewportSize = new() { Width = 1280, Height = 900 } });
        b.Page.Console += (_, m) => { if (m.Type == "error") b.Errors.Add(m.Text); };
        b.Page.PageError += (_, e) => b.Errors.Add(e);
        b.Page.RequestFailed += (_, r) => b.Errors.Add($"{r.Url}: {r.Failure}");
        await b.Page.GotoAsync(url);
        return b;
    }

    /// <summary>A screenshot under the test binary's TestResults/.</summary>
    public async Task<string> ScreenshotAsync(string name, bool fullPage)
    {
        string shot = Path.Combine(AppContext.BaseDirectory, "TestResults", name);
        Directory.CreateDirectory(Path.GetDirectoryName(shot)!);
        await Page.ScreenshotAsync(new() { Path = shot, FullPage = fullPage });
        return shot;
    }

    public async ValueTask DisposeAsync()
    {
        await _browser.DisposeAsync();
        _playwright.Dispose();
    }
}

/// <summary>
/// The daemon's dashboard in a real browser (issue 21): Debian's chromium, driven by Playwright with no browser
/// download. The page must show what /status says, draw its charts, log no error, and load every image it has.
/// </summary>
public partial class DaemonTests
{
    /// <summary>Whether a canvas holds pixels of the given colour (its series, not just the axes).</summary>
    internal const string HasColour = """
        ([id, r, g, b]) => {
          const c = document.getElementById(id), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let n = 0;
          for (let i = 0; i < d.length; i += 4)
            if (d[i + 3] > 200 && Math.abs(d[i] - r) < 40 && Math.abs(d[i + 1] - g) < 40 && Math.abs(d[i + 2] - b) < 40) n++;
          return n;
        }
        """;

    [Fact]
    public async Task Dashboard_InChromium_ShowsWhatStatusSays_DrawsItsCharts_AndLogsNoError()
    {
        string inbox = _tmp.Sub("inbox-dash"), state = _tmp.Sub("state-dash");
        Directory.CreateDirectory(inbox);
        var daemon = StartDaemon(Teacher, inbox, state, "--set", "snapshot.every_shards=1");
        try
        {
            string address = await AddressOf(daemon, state);
            await using var browser = await BrowserPage.OpenAsync(address + "/");
            var page = browser.Page;
            var errors = browser.Errors;

            // Two shards arrive while the page watches.
            Drop(Shards[0], inbox);
            Drop(Shards[1], inbox);
            await page.WaitForFunctionAsync("() => document.getElementById('shards_done').textContent === '2' && document.getElementById('snapshot_version').textContent === '2'",
                null, new() { Timeout = 60_000 });
            await page.WaitForFunctionAsync("n => Number(document.body.dataset.polls) > n", Convert.ToInt32(await page.EvaluateAsync<string>("document.body.dataset.polls")), new() { Timeout = 10_000 });

            using var status = JsonDocument.Parse((await Get(address + "/status")).Text);
            var s = status.RootElement;
            Assert.Equal(s.GetProperty("images_scored").GetInt64().ToString("N0", System.Globalization.CultureInfo.InvariantCulture), await page.InnerTextAsync("#images_scored"));
            Assert.Equal(s.GetProperty("shards_done").GetInt32().ToString(System.Globalization.CultureInfo.InvariantCulture), await page.InnerTextAsync("#shards_done"));
            Assert.Equal(s.GetProperty("drops_quarantined").GetInt32().ToString(System.Globalization.CultureInfo.InvariantCulture), await page.InnerTextAsync("#drops_quarantined"));
            Assert.Equal(s.GetProperty("snapshot").GetProperty("version").GetInt32().ToString(System.Globalization.CultureInfo.InvariantCulture), await page.InnerTextAsync("#snapshot_version"));
            // The busiest stage for its workers, as /status's stages say.
            string busiest = s.GetProperty("stages").EnumerateArray()
                .MaxBy(x => x.GetProperty("busy_s").GetDouble() / Math.Max(1, x.GetProperty("workers").GetInt32())).GetProperty("stage").GetString()!;
            Assert.Equal(busiest, await page.InnerTextAsync("#bottleneck"));
            Assert.StartsWith("ok", await page.InnerTextAsync("#health"));

            // The charts hold their series: the rate's blue line, the stages' bars, the heaps' green bars.
            Assert.True(await page.EvaluateAsync<int>(HasColour, new object[] { "rate", 0x25, 0x63, 0xeb }) > 0, "the rate chart is blank");
            Assert.True(await page.EvaluateAsync<int>(HasColour, new object[] { "stages", 0x25, 0x63, 0xeb }) > 0, "the stage chart has no busy bar");
            Assert.True(await page.EvaluateAsync<int>(HasColour, new object[] { "fill", 0x16, 0x79, 0x4c }) > 0, "the heap fill chart has no bar");
            // The contact sheet of snapshot 2: class 0 first, then class 1 when chosen, at the ranks its heap reaches.
            await page.WaitForFunctionAsync("() => document.body.dataset.sheet === '2/0'", null, new() { Timeout = 30_000 });
            await page.SelectOptionAsync("#sheet_class", "1");
            await page.WaitForFunctionAsync("() => document.body.dataset.sheet === '2/1'", null, new() { Timeout = 30_000 });
            using var sheet = JsonDocument.Parse((await Get(address + "/dhat?class=1")).Text);
            var cells = sheet.RootElement.GetProperty("cells").EnumerateArray().ToList();
            int kept = sheet.RootElement.GetProperty("kept").GetInt32();
            Assert.Equal(DhatSheet.Ranks.Count(r => r <= kept), cells.Count);
            Assert.NotEmpty(cells);
            Assert.Equal(cells.Select(c => c.GetProperty("id").GetString()), await page.EvaluateAsync<string[]>("() => Array.from(document.querySelectorAll('#sheet img')).map(i => i.alt)"));
            // The first one's pixels are those of the image in the shard it was scored from (28 x 28: no resize).
            string id = cells[0].GetProperty("id").GetString()!;
            byte[] served = await Http.GetByteArrayAsync(address + cells[0].GetProperty("image").GetString());
            ImageRecord? original = null;
            foreach (var shard in Shards.Take(2))
                await foreach (var r in ImageShardReader.ReadAsync(shard))
                    if (r.Id == id) original = r;
            Assert.NotNull(original);
            using (var a = SKBitmap.Decode(served))
            using (var b = SKBitmap.Decode(original!.Image))
            {
                Assert.Equal((b.Width, b.Height), (a.Width, a.Height));
                for (int y = 0; y < a.Height; y++)
                    for (int x = 0; x < a.Width; x++)
                        Assert.Equal(b.GetPixel(x, y), a.GetPixel(x, y));
            }
            Assert.Equal(404, (await Get(address + "/dhat?class=99")).Code);
            // Every image on the page loaded.
            Assert.True(await page.EvaluateAsync<bool>("() => document.images.length > 0 && Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"));
            Assert.Empty(errors);

            string shot = await browser.ScreenshotAsync("dashboard.png", fullPage: true);
            Assert.True(new FileInfo(shot).Length > 10_000);
            Assert.Equal(0, await Sigterm(daemon));
        }
        finally
        {
            if (!daemon.HasExited) daemon.Kill();
        }
    }
}
