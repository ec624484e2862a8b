using System.Security.Cryptography;
using CsCheck;
using Streaming.Core;
using Streaming.Core.Datasets;
using Streaming.Core.Shards;
using Xunit;
using Streaming.Core.Decode;

namespace Streaming.Tests;

public class ShardTests
{
    private static ImageRecord Record(string id, byte[] image, int? label) =>
        new(id, image, label, "src/" + id, "png", 1, 1, Convert.ToHexStringLower(SHA256.HashData(image)));

    private static readonly Gen<ImageRecord> GenRecord =
        Gen.Select(Gen.String[Gen.Char.AlphaNumeric, 1, 12], Gen.Byte.Array[0, 300], Gen.Int[-1, 9].Select(i => i < 0 ? (int?)null : i))
            .Select((id, image, label) => Record(id, image, label));

    [Fact]
    public async Task Shard_RoundTrip_IsLossless()
    {
        await Gen.Select(GenRecord.List[0, 60], Gen.Int[1, 16]).SampleAsync(async t =>
        {
            var (records, rowGroup) = t;
            using var tmp = new TempDir();
            string path = tmp.Sub("s.parquet");
            await using (var w = await ImageShardWriter.CreateAsync(path, ShardCompression.Snappy, rowGroup))
            {
                foreach (var r in records) await w.WriteAsync(r);
                await w.CompleteAsync();
            }
            var back = new List<ImageRecord>();
            await foreach (var r in ImageShardReader.ReadAsync(path)) back.Add(r);
            Assert.Equal(records.Count, back.Count);
            for (int i = 0; i < records.Count; i++)
            {
                Assert.Equal(records[i].Id, back[i].Id);
                Assert.Equal(records[i].Image, back[i].Image);
                Assert.Equal(records[i].Label, back[i].Label);
                Assert.Equal(records[i] with { Image = back[i].Image }, back[i]);
            }
        }, iter: 40);
    }

    [Theory]
    [InlineData(ShardCompression.Snappy)]
    [InlineData(ShardCompression.Zstd)]
    [InlineData(ShardCompression.None)]
    public async Task Shard_EveryCompression_ReadsBack(ShardCompression compression)
    {
        using var tmp = new TempDir();
        string path = tmp.Sub("s.parquet");
        await using (var w = await ImageShardWriter.CreateAsync(path, compression))
        {
            await w.WriteAsync(Record("a", [1, 2, 3], 4));
            await w.WriteAsync(Record("b", [5], null));
            await w.CompleteAsync();
        }
        var ids = await ImageShardReader.ReadIdsAndLabelsAsync(path);
        Assert.Equal(new[] { ("a", (int?)4), ("b", (int?)null) }, ids);
    }

    [Fact]
    public async Task Shard_NotCompleted_LeavesNoFile()
    {
        using var tmp = new TempDir();
        string path = tmp.Sub("s.parquet");
        await using (var w = await ImageShardWriter.CreateAsync(path))
            await w.WriteAsync(Record("a", [1], 0));
        Assert.Empty(Directory.EnumerateFileSystemEntries(tmp.Path));
    }

    [Fact]
    public async Task Reader_CorruptShard_FailsWithTheFileName()
    {
        using var tmp = new TempDir();
        string path = tmp.Sub("bad.parquet");
        await File.WriteAllBytesAsync(path, [.. "PAR1"u8, 1, 2, 3, 4, .. "PAR1"u8]);
        var e = await Assert.ThrowsAsync<StreamingException>(async () => { await foreach (var _ in ImageShardReader.ReadAsync(path)) { } });
        Assert.Contains("bad.parquet", e.Message);
    }

    [Fact]
    public async Task DatasetWriter_RollsShards_AndWritesAManifest()
    {
        using var tmp = new TempDir();
        string output = tmp.Sub("ds");
        DatasetManifest manifest;
        await using (var w = new DatasetWriter(output, new DatasetWriterOptions { ShardSize = 4 }))
        {
            for (int i = 0; i < 10; i++) await w.AddAsync(Record($"r{i}", [(byte)i], i % 3 == 2 ? null : i % 3));
            w.Quarantine(new QuarantineEntry("bad1", "x", QuarantineReasons.Empty, "0 bytes"));
            manifest = await w.CompleteAsync(new DatasetManifest { Classes = ["zero", "one"], Origin = "test" });
        }
        Assert.Equal(10, manifest.Rows);
        Assert.Equal(7, manifest.Labeled);
        Assert.Equal(3, manifest.Unlabeled);
        Assert.Equal(new long[] { 4, 3 }, manifest.ClassCounts);
        Assert.Equal(new[] { "shard-00000.parquet", "shard-00001.parquet", "shard-00002.parquet" }, manifest.Shards.Select(s => s.File));
        Assert.Equal(new long[] { 4, 4, 2 }, manifest.Shards.Select(s => s.Rows));
        foreach (var s in manifest.Shards)
        {
            string path = Path.Combine(output, s.File);
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path))), s.Sha256);
            Assert.Equal(new FileInfo(path).Length, s.Bytes);
        }
        Assert.Equal(1, manifest.Quarantined);
        Assert.Equal(1, manifest.QuarantineReasons[QuarantineReasons.Empty]);
        Assert.Contains("\"reason\":\"empty\"", File.ReadAllText(Path.Combine(output, "quarantine.jsonl")));

        var loaded = DatasetManifest.Load(output);
        Assert.Equal(manifest.ToJson(), loaded.ToJson());
        // Nothing but the dataset is left next to it.
        Assert.Equal(new[] { "ds" }, Directory.EnumerateFileSystemEntries(tmp.Path).Select(Path.GetFileName));
    }

    [Fact]
    public async Task DatasetWriter_Abandoned_LeavesNothing()
    {
        using var tmp = new TempDir();
        await using (var w = new DatasetWriter(tmp.Sub("ds")))
            await w.AddAsync(Record("a", [1], 0));
        Assert.Empty(Directory.EnumerateFileSystemEntries(tmp.Path));
    }

    [Fact]
    public async Task DatasetWriter_RefusesANonEmptyFolder_UnlessOverwrite()
    {
        using var tmp = new TempDir();
        string output = tmp.Sub("ds");
        Directory.CreateDirectory(output);
        File.WriteAllText(Path.Combine(output, "keep.txt"), "precious");
        Assert.Throws<StreamingException>(() => new DatasetWriter(output));
        Assert.True(File.Exists(Path.Combine(output, "keep.txt")));

        await using var w = new DatasetWriter(output, new DatasetWriterOptions { Overwrite = true });
        await w.AddAsync(Record("a", [1], 0));
        await w.CompleteAsync(new DatasetManifest());
        Assert.False(File.Exists(Path.Combine(output, "keep.txt")));
        Assert.Equal(1, DatasetManifest.Load(output).Rows);
    }

    [Fact]
    public async Task DatasetWriter_LabelBeyondClassNames_Fails()
    {
        using var tmp = new TempDir();
        await using var w = new DatasetWriter(tmp.Sub("ds"));
        await w.AddAsync(Record("a", [1], 5));
        await Assert.ThrowsAsync<StreamingException>(() => w.CompleteAsync(new DatasetManifest { Classes = ["a", "b"] }));
    }

    [Theory]
    [InlineData("{", "bad manifest")]
    [InlineData("{\"format\":\"other/9\"}", "format")]
    [InlineData("{\"format\":\"streaming.image-dataset/1\",\"rows\":5,\"shards\":[{\"file\":\"x.parquet\",\"rows\":5,\"bytes\":1,\"sha256\":\"\"}]}", "missing")]
    [InlineData("{\"format\":\"streaming.image-dataset/1\",\"shards\":[{\"file\":\"../x.parquet\",\"rows\":0,\"bytes\":1,\"sha256\":\"\"}]}", "plain file name")]
    public void Manifest_Bad_FailsWithOneClearLine(string json, string expected)
    {
        using var tmp = new TempDir();
        File.WriteAllText(Path.Combine(tmp.Path, "dataset.json"), json);
        var e = Assert.Throws<StreamingException>(() => DatasetManifest.Load(tmp.Path));
        Assert.Contains(expected, e.Message);
        Assert.Contains("dataset.json", e.Message);
        Assert.DoesNotContain("\n", e.Message);
    }
}
