using System.Diagnostics;
using System.Formats.Tar;
using System.Text;
using System.Text.Json;
using Streaming.Core;
using Streaming.Core.Datasets;
using Streaming.Core.Decode;
using Streaming.Core.Ingest;
using Streaming.Core.Shards;
using Streaming.Core.Tags;
using Xunit;

namespace Streaming.Tests;

/// <summary>
/// Weak labels as data (issue 20, part 1): the optional <c>tags</c> column of image shards, written only for datasets
/// with tags, read back by DuckDB; tags ingested from WebDataset .tags/.json members, a Parquet list column (written by
/// DuckDB) and list files; and <c>tags --from-column</c> turning them into W and soft targets.
/// </summary>
public class WeakLabelDataTests : IDisposable
{
    private readonly TempDir _tmp = new();
    private static readonly IReadOnlyList<string> Classes = ImageSource.FashionMnistClasses;

    public void Dispose() => _tmp.Dispose();

    private static byte[] Png(int seed)
    {
        var pixels = new byte[8 * 8];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (byte)(seed * 37 + i * 11);
        return PngEncoder.Encode(pixels, 8, 8, 1);
    }

    private static ImageRecord Record(string id, int seed, int[]? tags) =>
        new ImageRecord(id, Png(seed), null, id, "png", 8, 8, Hashing.Sha256(Png(seed))) { Tags = tags };

    /// <summary>Runs SQL with DuckDB (tools/interop/duckdb_sql.mjs) and returns the last statement's rows.</summary>
    internal static async Task<JsonElement> DuckDbAsync(params string[] sql)
    {
        string interop = Path.Combine(TestPaths.Root, "tools", "interop");
        await NpmPackages.EnsureAsync(interop, Path.Combine(interop, "node_modules", "@duckdb", "node-api"));
        Prerequisite.Node.Require();
        var info = new ProcessStartInfo("node", [Path.Combine(interop, "duckdb_sql.mjs"), .. sql]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var node = Process.Start(info)!;
        var stdout = node.StandardOutput.ReadToEndAsync();
        string errors = await node.StandardError.ReadToEndAsync();
        await node.WaitForExitAsync();
        string json = await stdout;
        Assert.True(node.ExitCode == 0, json + errors);
        return JsonDocument.Parse(json).RootElement.Clone();
    }

    private static string T(int[]? tags) => tags is null ? "null" : "[" + string.Join(",", tags) + "]";

    private static string Sql(string path) => "'" + path.Replace("'", "''") + "'";

    [Fact]
    public async Task TagsColumn_RoundTrips_NullEmptyAndLists_AndDuckDbReadsItAsAListOfIntegers()
    {
        // Row groups of two: the last one has only null lists (no values at all).
        var records = new[] { Record("a", 1, [1, 2]), Record("b", 2, null), Record("c", 3, []), Record("d", 4, [5]), Record("e", 5, null), Record("f", 6, null) };
        await using (var w = new DatasetWriter(_tmp.Sub("ds"), new DatasetWriterOptions { Tags = true, RowGroupSize = 2 }))
        {
            foreach (var r in records) await w.AddAsync(r);
            var m = await w.CompleteAsync(new DatasetManifest { Classes = Classes });
            Assert.Equal(2, m.Tagged); // images with at least one tag
        }
        var back = await IngestTests.ReadAll(_tmp.Sub("ds"));
        Assert.Equal(records.Select(r => r.Tags is null ? "null" : string.Join(",", r.Tags)), back.Select(r => r.Tags is null ? "null" : string.Join(",", r.Tags)));
        Assert.True(DatasetManifest.Load(_tmp.Sub("ds")).HasTags);

        var rows = await DuckDbAsync($"SELECT id, tags, typeof(tags) AS type FROM read_parquet({Sql(Path.Combine(_tmp.Sub("ds"), "*.parquet"))}) ORDER BY id");
        Assert.Equal("INTEGER[]", rows[0].GetProperty("type").GetString());
        Assert.Equal("[1,2]|null|[]|[5]|null|null", string.Join("|", rows.EnumerateArray().Select(r => r.GetProperty("tags").GetRawText())));
    }

    [Fact]
    public async Task ADatasetWithoutTags_KeepsThePlainSchema_AndATaggedRecordThereIsRefused()
    {
        await using (var w = new DatasetWriter(_tmp.Sub("plain")))
        {
            await w.AddAsync(Record("a", 1, null));
            await w.CompleteAsync(new DatasetManifest { Classes = Classes });
            await using var w2 = new DatasetWriter(_tmp.Sub("refused"));
            await Assert.ThrowsAsync<InvalidOperationException>(() => w2.AddAsync(Record("b", 2, [1])));
        }
        Assert.DoesNotContain("tagged", File.ReadAllText(Path.Combine(_tmp.Sub("plain"), DatasetManifest.FileName)));
        var columns = await DuckDbAsync($"SELECT column_name FROM (DESCRIBE SELECT * FROM read_parquet({Sql(Path.Combine(_tmp.Sub("plain"), "*.parquet"))}))");
        Assert.Equal(["id", "image", "label", "source", "format", "width", "height", "sha256"], columns.EnumerateArray().Select(c => c.GetProperty("column_name").GetString()));
    }

    [Fact]
    public async Task WebDataset_TagsAndJsonMembers_AreIngested_NamesMapped_AndBadTagsQuarantined()
    {
        string tar = _tmp.Sub("tagged.tar");
        await using (var file = File.Create(tar))
        await using (var writer = new TarWriter(file))
        {
            async Task Add(string name, byte[] data)
            {
                var entry = new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(data) };
                await writer.WriteEntryAsync(entry);
            }
            await Add("a.png", Png(1)); await Add("a.cls", "0"u8.ToArray()); await Add("a.tags", Encoding.UTF8.GetBytes("Trouser, #bag\nnot-a-class"));
            await Add("b.png", Png(2)); await Add("b.json", Encoding.UTF8.GetBytes("{\"caption\": \"x\", \"tags\": [3, \"Coat\"]}"));
            await Add("c.png", Png(3));
            await Add("d.png", Png(4)); await Add("d.tags", "12"u8.ToArray());
            await Add("e.png", Png(5)); await Add("e.json", "{\"caption\": \"no tags\"}"u8.ToArray());
            await Add("f.png", Png(6)); await Add("f.json", "{\"tags\": null}"u8.ToArray());
        }
        var source = ImageSource.Open(tar, classNames: Classes);
        Assert.True(source.HasTags);
        var result = await Ingestor.RunAsync(source, _tmp.Sub("wds"));
        Assert.Equal(2, result.Manifest.Tagged); // a and b; c has no tags member, e's JSON no tags, d is quarantined
        var byId = (await IngestTests.ReadAll(_tmp.Sub("wds"))).ToDictionary(r => r.Id);
        Assert.Equal("[1,8]", T(byId["a"].Tags));
        Assert.Equal(0, byId["a"].Label);
        Assert.Equal("[3,4]", T(byId["b"].Tags));
        Assert.Null(byId["c"].Tags);
        Assert.Null(byId["e"].Tags);
        Assert.Null(byId["f"].Tags);
        Assert.False(byId.ContainsKey("d"));
        Assert.Equal(1, result.Manifest.QuarantineReasons[QuarantineReasons.BadLabel]);

        // A tar with no tags members keeps the plain schema, and so does one whose .json members (img2dataset writes one
        // for every sample) have no tags.
        Assert.False(ImageSource.Open(TestPaths.MiniTar).HasTags);
        string captions = _tmp.Sub("captions.tar");
        await using (var file = File.Create(captions))
        await using (var writer = new TarWriter(file))
            for (int i = 0; i < 3; i++)
            {
                await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, $"s{i}.png") { DataStream = new MemoryStream(Png(i)) });
                await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, $"s{i}.json") { DataStream = new MemoryStream("{\"caption\": \"x\"}"u8.ToArray()) });
            }
        Assert.False(ImageSource.Open(captions).HasTags);
        Assert.Null((await Ingestor.RunAsync(ImageSource.Open(captions), _tmp.Sub("captions"))).Manifest.Tagged);
    }

    [Fact]
    public async Task Parquet_TagsListColumn_WrittenByDuckDb_OfNamesOrIndices_IsIngested()
    {
        string hex(int seed) => Convert.ToHexString(Png(seed));
        string file = _tmp.Sub("tagged.parquet");
        await DuckDbAsync($"""
            COPY (SELECT * FROM (VALUES
                ('a', from_hex('{hex(1)}'), 0, ['Trouser', 'Bag', 'sunset']),
                ('b', from_hex('{hex(2)}'), NULL, NULL),
                ('c', from_hex('{hex(3)}'), NULL, []),
                ('d', from_hex('{hex(4)}'), 2, ['#Dress']))
              t(id, image, label, tags)) TO {Sql(file)} (FORMAT parquet)
            """);
        var result = await Ingestor.RunAsync(ImageSource.Open(file, classNames: Classes), _tmp.Sub("pq"));
        Assert.Equal(2, result.Manifest.Tagged);
        var byId = (await IngestTests.ReadAll(_tmp.Sub("pq"))).ToDictionary(r => r.Id);
        Assert.Equal("[1,8]", T(byId["a"].Tags));
        Assert.Null(byId["b"].Tags);
        Assert.NotNull(byId["c"].Tags);
        Assert.Empty(byId["c"].Tags!);
        Assert.Equal("[3]", T(byId["d"].Tags));

        string ints = _tmp.Sub("ints.parquet");
        await DuckDbAsync($"COPY (SELECT 'x' AS id, from_hex('{hex(5)}') AS image, [7::BIGINT, 2::BIGINT] AS hashtags) TO {Sql(ints)} (FORMAT parquet)");
        await Ingestor.RunAsync(ImageSource.Open(ints, tagsColumn: "hashtags"), _tmp.Sub("pq-ints"));
        Assert.Equal("[2,7]", T((await IngestTests.ReadAll(_tmp.Sub("pq-ints")))[0].Tags));
        var e = Assert.Throws<StreamingException>(() => ImageSource.Open(ints, tagsColumn: "labels").HasTags);
        Assert.Contains("no tags column 'labels'", e.Message);

        // A column that is merely called "tags" (free text) is not taken for weak labels.
        string text = _tmp.Sub("text.parquet");
        await DuckDbAsync($"COPY (SELECT 'x' AS id, from_hex('{hex(6)}') AS image, 'summer, beach' AS tags) TO {Sql(text)} (FORMAT parquet)");
        Assert.False(ImageSource.Open(text).HasTags);
        Assert.Null((await Ingestor.RunAsync(ImageSource.Open(text), _tmp.Sub("pq-text"))).Manifest.Tagged);
    }

    [Fact]
    public async Task ListFile_ThirdField_IsTags_AndTagsFromColumn_MakeWAndSoftTargets()
    {
        Directory.CreateDirectory(_tmp.Sub("imgs"));
        var lines = new List<string> { "# path, label, tags" };
        for (int i = 0; i < 30; i++)
        {
            File.WriteAllBytes(Path.Combine(_tmp.Sub("imgs"), $"{i}.png"), Png(i));
            int y = i % 6;
            // Every fourth image untagged; the others tagged with their class, and every fifth also with a wrong one.
            string tags = i % 4 == 2 ? "" : string.Join(",", new[] { Classes[y] }.Concat(i % 5 == 0 ? [Classes[(y + 3) % 6]] : []));
            lines.Add($"imgs/{i}.png\t{y}\t{tags}");
        }
        File.WriteAllLines(_tmp.Sub("list.txt"), lines);
        var source = ImageSource.Open(_tmp.Sub("list.txt"), classNames: Classes.Take(6).ToList());
        Assert.True(source.HasTags);
        await Ingestor.RunAsync(source, _tmp.Sub("listed"));
        var records = await IngestTests.ReadAll(_tmp.Sub("listed"));
        Assert.Equal(30, records.Count);
        Assert.Equal("[0,3]", T(records.Single(r => r.Id == "imgs/0.png").Tags));
        Assert.NotNull(records.Single(r => r.Id == "imgs/2.png").Tags);
        Assert.Empty(records.Single(r => r.Id == "imgs/2.png").Tags!);

        // Split keeps the column; tags --from-column turns U's tags into W and a scoring folder, measured against the withheld labels.
        await DatasetSplitter.SplitAsync(_tmp.Sub("listed"), 2, 0, _tmp.Sub("d"), _tmp.Sub("u"));
        Assert.True(DatasetManifest.Load(_tmp.Sub("u")).HasTags);
        var weak = await WeakLabels.FromColumnAsync(_tmp.Sub("u"), _tmp.Sub("weak"));
        var u = await IngestTests.ReadAll(_tmp.Sub("u"));
        int tagged = u.Count(r => r.Tags is { Length: > 0 });
        Assert.Equal(tagged, DatasetManifest.Load(weak.Dataset).Rows);
        long correct = u.Count(r => r.Tags is { Length: > 0 } t && t.Contains(int.Parse(Path.GetFileNameWithoutExtension(r.Id)) % 6));
        long all = u.Sum(r => r.Tags?.Length ?? 0);
        Assert.Equal((double)correct / all, weak.Quality.Precision, 6);
        Assert.Equal((double)correct / u.Count, weak.Quality.Recall, 6);
        var targets = await Streaming.Core.Loading.SoftTargets.LoadAsync(weak.Tags, weak.Dataset);
        Assert.Equal(tagged, targets.Count);

        // A dataset with no tags column is refused with the reason.
        await Ingestor.RunAsync(ImageSource.Open(TestPaths.MiniTar), _tmp.Sub("plain"));
        var e = await Assert.ThrowsAsync<StreamingException>(() => WeakLabels.FromColumnAsync(_tmp.Sub("plain"), _tmp.Sub("x")));
        Assert.Contains("no tags column", e.Message);

        // A separate unlabeled collection of other classes joins U without its tags (they name its own classes).
        await DatasetSplitter.SplitAsync(_tmp.Sub("plain"), 5, 0, _tmp.Sub("d2"), _tmp.Sub("u2"), extraUnlabeled: _tmp.Sub("listed"));
        var u2 = await IngestTests.ReadAll(_tmp.Sub("u2"));
        Assert.True(DatasetManifest.Load(_tmp.Sub("u2")).HasTags);
        Assert.Equal(30, u2.Count(r => r.Id.StartsWith("imgs/", StringComparison.Ordinal)));
        Assert.All(u2, r => Assert.Null(r.Tags));
    }
}
