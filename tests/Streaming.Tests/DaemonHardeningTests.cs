using System.Formats.Tar;
using System.Net;
using System.Net.Http.Headers;
using Streaming.Daemon;
using Xunit;

namespace Streaming.Tests;

/// <summary>The daemon against hostile drops (issue 18): none of them stops it, each is quarantined with its reason or scored in full.</summary>
public partial class DaemonTests
{
    /// <summary>A tar of the given members, as WebDataset shards are.</summary>
    internal static void WriteTar(string path, params (string Name, byte[] Data)[] members)
    {
        using var file = File.Create(path);
        using var writer = new TarWriter(file, TarEntryFormat.Pax);
        foreach (var (member, data) in members)
            writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, member) { DataStream = new MemoryStream(data) });
    }

    [Fact]
    public async Task HostileDrops_AreQuarantinedOrScoredInFull_TheDaemonGoesOn_AndTheTokenGuardsStatus()
    {
        string inbox = _tmp.Sub("inbox-hostile"), state = _tmp.Sub("state-hostile"), token = _tmp.Sub("token");
        Directory.CreateDirectory(inbox);
        File.WriteAllText(token, "s3cret-token-0123456789\n");
        using var daemon = StartDaemon(Teacher, inbox, state, "--set", $"http.token_file={token}", "--set", "limits.max_member_mb=1");
        try
        {
            string address = await AddressOf(daemon, state);
            var pngs = Directory.EnumerateFiles(TestPaths.MiniFolder, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Take(3).Select(File.ReadAllBytes).ToArray();

            // A tar whose second sample claims label 2,000,000,000: that image is quarantined, the rest scored.
            WriteTar(_tmp.Sub("labels.tar"), ("a.png", pngs[0]), ("a.cls", "1"u8.ToArray()), ("b.png", pngs[1]), ("b.cls", "2000000000"u8.ToArray()));
            Drop(_tmp.Sub("labels.tar"), inbox);
            // A tar with a member over limits.max_member_mb: quarantined whole.
            WriteTar(_tmp.Sub("huge.tar"), ("a.png", pngs[0]), ("b.png", new byte[2 << 20]));
            Drop(_tmp.Sub("huge.tar"), inbox);
            // A drop that is a link to a shard outside the inbox.
            File.CreateSymbolicLink(Path.Combine(inbox, "elsewhere.parquet"), Shards[3]);
            // A folder drop with a link loop in it and one image.
            string loop = _tmp.Sub("loop-staging");
            Directory.CreateDirectory(Path.Combine(loop, "x"));
            File.WriteAllBytes(Path.Combine(loop, "x", "one.png"), pngs[2]);
            Directory.CreateSymbolicLink(Path.Combine(loop, "x", "again"), loop);
            Directory.Move(loop, Path.Combine(inbox, "loopy"));

            string Quarantine(string name) => Path.Combine(state, "quarantine", name + ".reason.txt");
            await WaitFor(() => DoneCount(state) == 2 && File.Exists(Quarantine("huge.tar")) && File.Exists(Quarantine("elsewhere.parquet")),
                "two scored drops and two quarantined", state);
            Assert.Contains("limits.max_member_mb", File.ReadAllText(Quarantine("huge.tar")));
            Assert.Contains("symbolic link", File.ReadAllText(Quarantine("elsewhere.parquet")));
            Assert.True(File.Exists(Shards[3]), "the link's target is left alone");
            var done = DaemonState.Load(state)!.Done;
            Assert.Equal(1, done.Single(d => d.Drop == "labels.tar").Rows);
            Assert.Equal(1, done.Single(d => d.Drop == "loopy").Rows);

            // The same name again with other content: ingested and scored in full, not taken for the first.
            WriteTar(_tmp.Sub("labels2.tar"), ("c.png", pngs[2]), ("d.png", pngs[0]), ("e.png", pngs[1]));
            Drop(_tmp.Sub("labels2.tar"), inbox, "labels.tar");
            await WaitFor(() => DoneCount(state) == 3, "the second labels.tar", state);
            Assert.Equal([1L, 3L], DaemonState.Load(state)!.Done.Where(d => d.Drop == "labels.tar").Select(d => d.Rows).Order());

            // The endpoints: probes open, /status and /metrics behind the token.
            Assert.Equal("ok\n", await Http.GetStringAsync(address + "/healthz"));
            Assert.Equal(HttpStatusCode.Unauthorized, (await Http.GetAsync(address + "/status")).StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, (await Http.GetAsync(address + "/metrics")).StatusCode);
            using var request = new HttpRequestMessage(HttpMethod.Get, address + "/metrics");
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "s3cret-token-0123456789");
            using var response = await Http.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var metrics = ParsePrometheus(await response.Content.ReadAsStringAsync());
            Assert.Equal(2, metrics["streaming_drops_quarantined_total"]);
            Assert.Equal(0, await Sigterm(daemon));
        }
        finally
        {
            if (!daemon.HasExited) daemon.Kill();
        }
    }

    [Fact]
    public async Task LostScoreShards_AfterAPowerLoss_AreScoredAgain_InsteadOfRefusingToStart()
    {
        string inbox = _tmp.Sub("inbox-lost"), state = _tmp.Sub("state-lost");
        Directory.CreateDirectory(inbox);
        string[] noCheckpoint = ["--set", "checkpoint.every_shards=1000"];
        var daemon = StartDaemon(Teacher, inbox, state, noCheckpoint);
        List<DoneShard> before;
        try
        {
            await AddressOf(daemon, state);
            foreach (var shard in Shards.Take(3)) Drop(shard, inbox);
            await WaitFor(() => DoneCount(state) == 3, "three shards", state);
            daemon.Kill(); // as a power loss would: no checkpoint, done.jsonl names all three
            await daemon.WaitForExitAsync();
            before = DaemonState.Load(state)!.Done;
        }
        finally
        {
            if (!daemon.HasExited) daemon.Kill();
            daemon.Dispose();
        }
        // One score shard torn, one gone: what a rename that never reached the disk leaves.
        string torn = Path.Combine(state, before[0].ScoreFile), gone = Path.Combine(state, before[1].ScoreFile);
        File.WriteAllBytes(torn, File.ReadAllBytes(torn)[..100]);
        File.Delete(gone);

        using var again = StartDaemon(Teacher, inbox, state, noCheckpoint);
        try
        {
            await AddressOf(again, state);
            bool Restored() => DoneCount(state) == 3 && before.All(d => File.Exists(Path.Combine(state, d.ScoreFile))
                && Streaming.Core.Hashing.Sha256File(Path.Combine(state, d.ScoreFile)) == d.ScoreSha256);
            await WaitFor(Restored, "the lost score shards to be scored again, byte for byte", state);
            Assert.Equal(before.Select(d => d.Key).Order(), DaemonState.Load(state)!.Done.Select(d => d.Key).Order());
            Assert.Equal(0, await Sigterm(again));
        }
        finally
        {
            if (!again.HasExited) again.Kill();
        }
    }
}
