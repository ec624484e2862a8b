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

    /// <summary>
    /// Scoring's reader of the id and image columns reads our shards page by page itself (every codec, any row group
    /// size, images from 0 bytes up, ids in any script, repeated or not), and gives what was written.
    /// </summary>
    [Fact]
    public async Task ImageColumns_ReadOurShardsPagesThemselves()
    {
        var gen = Gen.Select(Gen.Select(Gen.String[Gen.Char, 1, 20], Gen.Byte.Array[0, 3000]).List[1, 90], Gen.Int[1, 40], Gen.Int[0, 2].Select(i => new[] { ShardCompression.Snappy, ShardCompression.Zstd, ShardCompression.None }[i]), Gen.Bool);
        await gen.SampleAsync(async t =>
        {
            var (rows, rowGroup, compression, repeatIds) = t;
            using var tmp = new TempDir();
            string path = tmp.Sub("s.parquet");
            var records = rows.Select((r, i) => Record(repeatIds ? "same-id" : $"{r.Item1}-{i}", r.Item2, null)).ToList();
            await using (var w = await ImageShardWriter.CreateAsync(path, compression, rowGroup))
            {
                foreach (var r in records) await w.WriteAsync(r);
                await w.CompleteAsync();
            }
            await using var columns = await ShardImageColumns.OpenAsync(path);
            AssertColumns(records.Select(r => (r.Id, r.Image)).ToList(), await ReadAllAsync(columns));
            Assert.Equal((columns.RowGroupCount, 0), (columns.FastRowGroups, columns.FallbackRowGroups));
        }, iter: 60);
    }

    /// <summary>
    /// A shard from another writer whose columns the fast path does not read (nullable, dictionary-encoded) goes
    /// through Parquet.Net, with the same result.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ImageColumns_OfAnotherWritersShard_ReadThroughParquetNet(bool dictionary)
    {
        using var tmp = new TempDir();
        string path = tmp.Sub("s.parquet");
        // Nullable columns without a dictionary; required ones with a dictionary (each alone sends it to Parquet.Net).
        var id = new Parquet.Schema.DataField<string>("id", nullable: !dictionary);
        var image = new Parquet.Schema.DataField<byte[]>("image", nullable: !dictionary);
        var rows = Enumerable.Range(0, 70).Select(i => (Id: dictionary ? $"id-{i % 3}" : $"id-{i}", Image: Enumerable.Range(0, i * 7).Select(b => (byte)(b ^ i)).ToArray())).ToList();
        await using (var stream = File.Create(path))
        {
            var options = new Parquet.ParquetOptions();
            if (dictionary)
            {
                options.ColumnEncodingHints[id.Path.ToString()] = Parquet.EncodingHint.Dictionary;
                options.ColumnEncodingHints[image.Path.ToString()] = Parquet.EncodingHint.Dictionary;
            }
            await using var writer = await Parquet.ParquetWriter.CreateAsync(new Parquet.Schema.ParquetSchema(id, image), stream, options);
            foreach (var chunk in rows.Chunk(30))
            {
                using var g = writer.CreateRowGroup();
                await g.WriteAsync(id, chunk.Select(r => r.Id).ToArray());
                await g.WriteAsync(image, chunk.Select(r => r.Image).ToArray());
            }
        }
        await using var columns = await ShardImageColumns.OpenAsync(path);
        AssertColumns(rows, await ReadAllAsync(columns));
        Assert.Equal((0, 3), (columns.FastRowGroups, columns.FallbackRowGroups));
    }

    private static async Task<List<(string Id, byte[] Image)>> ReadAllAsync(ShardImageColumns columns)
    {
        var all = new List<(string, byte[])>();
        for (int g = 0; g < columns.RowGroupCount; g++)
        {
            await columns.ReadRowGroupAsync(g);
            for (int i = 0; i < columns.Count; i++) all.Add((columns.Ids[i], columns.Image(i).ToArray()));
        }
        return all;
    }

    private static void AssertColumns(List<(string Id, byte[] Image)> expected, List<(string Id, byte[] Image)> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].Id, actual[i].Id);
            Assert.Equal(expected[i].Image, actual[i].Image);
        }
    }

    [Fact]
    public async Task ImageColumns_OfATruncatedShard_FailWithTheFileName()
    {
        using var tmp = new TempDir();
        string path = tmp.Sub("s.parquet");
        await using (var w = await ImageShardWriter.CreateAsync(path))
        {
            for (int i = 0; i < 50; i++) await w.WriteAsync(Record($"id-{i}", Enumerable.Range(0, 500).Select(b => (byte)(b * i)).ToArray(), null));
            await w.CompleteAsync();
        }
        // Overwrite the middle of the data (the footer stays readable): a page header or a page becomes garbage.
        var bytes = File.ReadAllBytes(path);
        for (int i = 100; i < bytes.Length / 2; i++) bytes[i] = 0xff;
        File.WriteAllBytes(path, bytes);
        var e = await Assert.ThrowsAsync<StreamingException>(async () =>
        {
            await using var columns = await ShardImageColumns.OpenAsync(path);
            for (int g = 0; g < columns.RowGroupCount; g++) await columns.ReadRowGroupAsync(g);
        });
        Assert.Contains(path, e.Message);
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
