using System.Formats.Tar;
using Parquet;
using Parquet.Schema;
using SkiaSharp;
using Streaming.Core;
using Streaming.Core.Datasets;
using Streaming.Core.Ingest;
using Streaming.Core.Shards;
using Xunit;
using Streaming.Core.Decode;

namespace Streaming.Tests;

public class IngestTests
{
    internal static async Task<List<ImageRecord>> ReadAll(string dataset)
    {
        var manifest = DatasetManifest.Load(dataset);
        var all = new List<ImageRecord>();
        foreach (var shard in manifest.ShardPaths(dataset))
            await foreach (var r in ImageShardReader.ReadAsync(shard)) all.Add(r);
        return all;
    }

    private static byte[] Gray(byte[] png)
    {
        using var bitmap = SKBitmap.Decode(png);
        var result = new byte[bitmap.Width * bitmap.Height];
        for (int y = 0; y < bitmap.Height; y++)
            for (int x = 0; x < bitmap.Width; x++) result[y * bitmap.Width + x] = bitmap.GetPixel(x, y).Red;
        return result;
    }

    [Fact]
    public async Task Idx_RoundTrip_KeepsPixelsLabelsAndClassNames()
    {
        using var tmp = new TempDir();
        var result = await Ingestor.RunAsync(ImageSource.Open(TestPaths.MiniIdxTrain), tmp.Sub("ds"), new IngestOptions { Writer = new DatasetWriterOptions { ShardSize = 128 } });
        var (images, labels) = IdxReader.Read(TestPaths.MiniIdxTrain);
        var m = result.Manifest;
        Assert.Equal(300, m.Rows);
        Assert.Equal(300, m.Labeled);
        Assert.Equal(ImageSource.FashionMnistClasses, m.Classes);
        Assert.Equal(new long[] { 128, 128, 44 }, m.Shards.Select(s => s.Rows));
        Assert.Equal(labels.GroupBy(l => l).OrderBy(g => g.Key).Select(g => (long)g.Count()), m.ClassCounts.Where(c => c > 0));

        var records = await ReadAll(tmp.Sub("ds"));
        for (int i = 0; i < records.Count; i++)
        {
            Assert.Equal($"train-{i:D5}", records[i].Id);
            Assert.Equal(labels[i], records[i].Label);
            Assert.Equal(("png", 28, 28), (records[i].Format, records[i].Width, records[i].Height));
            Assert.Equal(images[i], Gray(records[i].Image));
        }
    }

    [Fact]
    public async Task Folder_RoundTrip_LabelsFromSubfolders()
    {
        using var tmp = new TempDir();
        var result = await Ingestor.RunAsync(ImageSource.Open(TestPaths.MiniFolder), tmp.Sub("ds"));
        var m = result.Manifest;
        var classDirs = Directory.EnumerateDirectories(TestPaths.MiniFolder).Select(d => Path.GetFileName(d)!).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(classDirs, m.Classes);
        Assert.Equal(200, m.Rows);
        var records = await ReadAll(tmp.Sub("ds"));
        foreach (var r in records)
        {
            string file = Path.Combine(TestPaths.MiniFolder, r.Id);
            Assert.Equal(File.ReadAllBytes(file), r.Image);
            Assert.Equal(classDirs[r.Label!.Value], r.Id.Split('/')[0]);
        }
        Assert.Equal(m.ClassCounts, classDirs.Select(d => (long)Directory.GetFiles(Path.Combine(TestPaths.MiniFolder, d)).Length));
    }

    [Fact]
    public async Task WebDataset_RoundTrip_MatchesTheFolderCopy()
    {
        using var tmp = new TempDir();
        var result = await Ingestor.RunAsync(ImageSource.Open(TestPaths.MiniTar), tmp.Sub("ds"));
        Assert.Equal(SourceFormat.WebDataset, ImageSource.Detect(TestPaths.MiniTar));
        Assert.Equal(300, result.Manifest.Rows);
        var records = (await ReadAll(tmp.Sub("ds"))).ToDictionary(r => r.Id);
        var (images, labels) = IdxReader.Read(TestPaths.MiniIdxTrain);
        // The folder sample holds the same PNG bytes for its 200 images as the tar.
        foreach (var file in Directory.EnumerateFiles(TestPaths.MiniFolder, "*.png", SearchOption.AllDirectories))
        {
            var r = records[Path.GetFileNameWithoutExtension(file)];
            Assert.Equal(File.ReadAllBytes(file), r.Image);
        }
        for (int i = 0; i < 300; i++) Assert.Equal(labels[i], records[$"train-{i:D5}"].Label);
    }

    private static async Task WriteHuggingFaceParquet(string path, IReadOnlyList<(byte[]? Bytes, string Path, long Label)> rows, string[] names)
    {
        var bytes = new DataField<byte[]>("bytes", nullable: true);
        var paths = new DataField<string>("path", nullable: true);
        var label = new DataField<long>("label", nullable: false);
        var schema = new ParquetSchema(new StructField("image", bytes, paths), label);
        await using var stream = File.Create(path);
        await using var writer = await ParquetWriter.CreateAsync(schema, stream);
        string features = string.Join(",", names.Select(n => $"\"{n}\""));
        writer.CustomMetadata = new Dictionary<string, string>
        {
            ["huggingface"] = $"{{\"info\":{{\"features\":{{\"image\":{{\"_type\":\"Image\"}},\"label\":{{\"names\":[{features}],\"_type\":\"ClassLabel\"}}}}}}}}",
        };
        using var rg = writer.CreateRowGroup();
        await rg.WriteAsync(bytes, rows.Select(r => r.Bytes!).ToArray());
        await rg.WriteAsync(paths, rows.Select(r => r.Path).ToArray());
        await rg.WriteAsync<long>(label, rows.Select(r => r.Label).ToArray().AsMemory());
    }

    [Fact]
    public async Task Parquet_HuggingFaceImageStruct_RoundTrip()
    {
        using var tmp = new TempDir();
        var photos = Directory.EnumerateFiles(TestPaths.Photos).Order(StringComparer.Ordinal).ToList();
        var rows = photos.Select((p, i) => ((byte[]?)File.ReadAllBytes(p), Path.GetFileName(p), (long)(i % 2))).ToList();
        string file = tmp.Sub("train-00000-of-00001.parquet");
        await WriteHuggingFaceParquet(file, rows, ["cat", "dog"]);

        var result = await Ingestor.RunAsync(ImageSource.Open(file), tmp.Sub("ds"));
        Assert.Equal(photos.Count, result.Manifest.Rows);
        Assert.Equal(new[] { "cat", "dog" }, result.Manifest.Classes);
        var records = await ReadAll(tmp.Sub("ds"));
        for (int i = 0; i < photos.Count; i++)
        {
            Assert.Equal(Path.GetFileName(photos[i]), records[i].Id);
            Assert.Equal(File.ReadAllBytes(photos[i]), records[i].Image);
            Assert.Equal(i % 2, records[i].Label);
        }
    }

    [Fact]
    public async Task Parquet_PlainBinaryColumn_RoundTrip_AndOurOwnShardsReingest()
    {
        using var tmp = new TempDir();
        // Our shards are Parquet with a binary 'image' column: ingesting them again must give the same images.
        await Ingestor.RunAsync(ImageSource.Open(TestPaths.MiniTar), tmp.Sub("first"));
        var again = await Ingestor.RunAsync(ImageSource.Open(tmp.Sub("first"), SourceFormat.Parquet), tmp.Sub("second"));
        Assert.Equal(300, again.Manifest.Rows);
        var a = await ReadAll(tmp.Sub("first"));
        var b = await ReadAll(tmp.Sub("second"));
        Assert.Equal(a.Select(r => (r.Id, r.Label, r.Sha256)), b.Select(r => (r.Id, r.Label, r.Sha256)));
    }

    [Fact]
    public async Task List_RoundTrip_WithLabels_AndMissingFilesQuarantined()
    {
        using var tmp = new TempDir();
        string list = tmp.Sub("images.txt");
        var photos = Directory.EnumerateFiles(TestPaths.Photos).Order(StringComparer.Ordinal).ToList();
        File.WriteAllLines(list, [
            "# photos, with a label after a tab",
            .. photos.Select((p, i) => $"{p}\t{i % 3}"),
            "",
            "does-not-exist.jpg\t1",
            $"{photos[0]}\tnot-a-number",
        ]);
        var result = await Ingestor.RunAsync(ImageSource.Open(list), tmp.Sub("ds"));
        Assert.Equal(photos.Count, result.Manifest.Rows);
        Assert.Equal(2, result.Manifest.Quarantined);
        Assert.Equal(1, result.Manifest.QuarantineReasons[QuarantineReasons.NotFound]);
        Assert.Equal(1, result.Manifest.QuarantineReasons[QuarantineReasons.BadLabel]);
        var records = await ReadAll(tmp.Sub("ds"));
        Assert.Equal(photos.Select((_, i) => (int?)(i % 3)), records.Select(r => r.Label));
    }

    [Fact]
    public async Task ExactDuplicates_AreKeptOnce_FirstInSourceOrder()
    {
        using var tmp = new TempDir();
        string folder = tmp.Sub("in");
        Directory.CreateDirectory(folder);
        foreach (var p in Directory.EnumerateFiles(TestPaths.Photos)) File.Copy(p, Path.Combine(folder, Path.GetFileName(p)));
        File.Copy(Path.Combine(TestPaths.Photos, "coffee.jpg"), Path.Combine(folder, "z-coffee-copy.jpg"));
        File.Copy(Path.Combine(TestPaths.Photos, "coffee.jpg"), Path.Combine(folder, "a-coffee-copy.jpg"));

        var result = await Ingestor.RunAsync(ImageSource.Open(folder), tmp.Sub("ds"));
        Assert.Equal(2, result.Duplicates);
        Assert.Equal(2, result.Manifest.Duplicates);
        var ids = (await ReadAll(tmp.Sub("ds"))).Select(r => r.Id).ToList();
        Assert.Contains("a-coffee-copy.jpg", ids);           // first in sorted order
        Assert.DoesNotContain("coffee.jpg", ids);
        Assert.DoesNotContain("z-coffee-copy.jpg", ids);
        var log = File.ReadAllLines(Path.Combine(tmp.Sub("ds"), Ingestor.DuplicatesFileName));
        Assert.Equal(2, log.Length);
        Assert.All(log, l => Assert.Contains("\"duplicate_of\":\"a-coffee-copy.jpg\"", l));
    }

    [Fact]
    public async Task BadFiles_AreQuarantined_GoodPhotosAllKept()
    {
        using var tmp = new TempDir();
        string folder = tmp.Sub("mixed");
        Directory.CreateDirectory(folder);
        foreach (var p in Directory.EnumerateFiles(TestPaths.Photos).Concat(Directory.EnumerateFiles(TestPaths.Bad)))
            File.Copy(p, Path.Combine(folder, Path.GetFileName(p)));
        File.WriteAllText(Path.Combine(folder, "notes.md"), "not an image, and not named like one");

        var result = await Ingestor.RunAsync(ImageSource.Open(folder), tmp.Sub("ds"));
        var good = Directory.EnumerateFiles(TestPaths.Photos).Select(p => Path.GetFileName(p)!).Order(StringComparer.Ordinal).ToList();
        var kept = (await ReadAll(tmp.Sub("ds"))).Select(r => r.Id).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(good, kept);
        Assert.Equal(1, result.Ignored);

        var quarantine = File.ReadAllLines(Path.Combine(tmp.Sub("ds"), "quarantine.jsonl"))
            .Select(l => System.Text.Json.JsonSerializer.Deserialize<QuarantineEntry>(l)!).ToDictionary(q => q.Id, q => q.Reason);
        Assert.Equal(new Dictionary<string, string>
        {
            ["empty.jpg"] = QuarantineReasons.Empty,
            ["random-bytes.jpg"] = QuarantineReasons.NotAnImage,
            ["text-renamed.png"] = QuarantineReasons.NotAnImage,
            ["truncated.jpg"] = QuarantineReasons.Corrupt,
            ["truncated-midscan.jpg"] = QuarantineReasons.Truncated,
            ["huge-header.png"] = QuarantineReasons.Oversized,
        }, quarantine);
        Assert.Equal(6, result.Manifest.Quarantined);
    }

    [Fact]
    public async Task NoVerify_KeepsBadBytes_ButStillDropsEmptyOnes()
    {
        using var tmp = new TempDir();
        var result = await Ingestor.RunAsync(ImageSource.Open(TestPaths.Bad), tmp.Sub("ds"), new IngestOptions { Verify = false });
        Assert.False(result.Manifest.Verified);
        Assert.Equal(5, result.Manifest.Rows);
        Assert.Equal(1, result.Manifest.Quarantined);
    }

    [Fact]
    public async Task Output_DoesNotDependOnWorkerCount()
    {
        using var tmp = new TempDir();
        string folder = tmp.Sub("mixed");
        Directory.CreateDirectory(folder);
        foreach (var p in Directory.EnumerateFiles(TestPaths.Photos).Concat(Directory.EnumerateFiles(TestPaths.Bad)))
            File.Copy(p, Path.Combine(folder, Path.GetFileName(p)));
        var one = await Ingestor.RunAsync(ImageSource.Open(TestPaths.MiniTar), tmp.Sub("w1"), new IngestOptions { Workers = 1, Name = "x" });
        var four = await Ingestor.RunAsync(ImageSource.Open(TestPaths.MiniTar), tmp.Sub("w4"), new IngestOptions { Workers = 4, Name = "x" });
        Assert.Equal(one.Manifest.ToJson(), four.Manifest.ToJson());
        var q1 = await Ingestor.RunAsync(ImageSource.Open(folder), tmp.Sub("q1"), new IngestOptions { Workers = 1, Name = "q" });
        var q3 = await Ingestor.RunAsync(ImageSource.Open(folder), tmp.Sub("q3"), new IngestOptions { Workers = 3, Name = "q" });
        Assert.Equal(q1.Manifest.ToJson(), q3.Manifest.ToJson());
        Assert.Equal(File.ReadAllBytes(Path.Combine(tmp.Sub("q1"), "quarantine.jsonl")), File.ReadAllBytes(Path.Combine(tmp.Sub("q3"), "quarantine.jsonl")));
    }

    private static void WriteTar(string path, params (string Name, byte[] Data)[] entries)
    {
        using var stream = File.Create(path);
        using var writer = new TarWriter(stream, TarEntryFormat.Ustar);
        foreach (var (name, data) in entries)
        {
            var entry = new UstarTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(data) };
            writer.WriteEntry(entry);
        }
    }

    [Fact]
    public async Task UnusableSources_FailWithOneLine_AndLeaveNoDataset()
    {
        using var tmp = new TempDir();
        byte[] photo = File.ReadAllBytes(Path.Combine(TestPaths.Photos, "chelsea.jpg"));
        string escaping = tmp.Sub("escape.tar");
        WriteTar(escaping, ("a.jpg", photo), ("a.cls", "1"u8.ToArray()), ("../../etc/b.jpg", photo));
        string notTar = tmp.Sub("fake.tar");
        File.WriteAllBytes(notTar, Enumerable.Range(0, 5000).Select(i => (byte)(i * 31 + 7)).ToArray());
        string noImageColumn = tmp.Sub("table.parquet");
        {
            var f = new DataField<int>("x");
            await using var s = File.Create(noImageColumn);
            await using var w = await ParquetWriter.CreateAsync(new ParquetSchema(f), s);
            using var rg = w.CreateRowGroup();
            await rg.WriteAsync<int>(f, new[] { 1, 2 }.AsMemory());
        }

        var cases = new (Func<ImageSource> Open, string Expected)[]
        {
            (() => ImageSource.Open(tmp.Sub("missing")), "no such file"),
            (() => ImageSource.Open(escaping), "escapes"),
            (() => ImageSource.Open(notTar), "not a tar"),
            (() => ImageSource.Open(noImageColumn), "no image column"),
            (() => ImageSource.Open(Path.Combine(TestPaths.Photos, "coffee.jpg"), SourceFormat.Parquet), "not a readable Parquet file"),
            (() => ImageSource.Open(Path.Combine(TestPaths.Photos, "coffee.jpg"), SourceFormat.Idx), "idx"),
        };
        foreach (var (open, expected) in cases)
        {
            string output = tmp.Sub("out");
            var e = await Assert.ThrowsAsync<StreamingException>(async () => await Ingestor.RunAsync(open(), output));
            Assert.Contains(expected, e.Message);
            Assert.DoesNotContain("\n", e.Message);
            Assert.False(Directory.Exists(output), $"{expected}: output folder was left behind");
            Assert.DoesNotContain(Directory.EnumerateDirectories(tmp.Path), d => Path.GetFileName(d).StartsWith(".out.tmp", StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task Tar_WithSamplesMissingImages_QuarantinesThem()
    {
        using var tmp = new TempDir();
        byte[] photo = File.ReadAllBytes(Path.Combine(TestPaths.Photos, "chelsea.jpg"));
        string tar = tmp.Sub("s.tar");
        WriteTar(tar, ("dir/a.jpg", photo), ("dir/a.cls", "3"u8.ToArray()), ("dir/b.json", "{}"u8.ToArray()), ("dir/c.png", File.ReadAllBytes(Path.Combine(TestPaths.Photos, "camera.png"))), ("dir/c.cls", "x"u8.ToArray()));
        var result = await Ingestor.RunAsync(ImageSource.Open(tar), tmp.Sub("ds"));
        Assert.Equal(1, result.Manifest.Rows);
        Assert.Equal(1, result.Manifest.QuarantineReasons[QuarantineReasons.NoImage]);
        Assert.Equal(1, result.Manifest.QuarantineReasons[QuarantineReasons.BadLabel]);
        var r = Assert.Single(await ReadAll(tmp.Sub("ds")));
        Assert.Equal(("dir/a", (int?)3), (r.Id, r.Label));
    }

    [Fact]
    public void Detect_RecognisesEachFormat()
    {
        Assert.Equal(SourceFormat.Idx, ImageSource.Detect(TestPaths.MiniIdxTrain));
        Assert.Equal(SourceFormat.WebDataset, ImageSource.Detect(TestPaths.MiniTar));
        Assert.Equal(SourceFormat.Folder, ImageSource.Detect(TestPaths.MiniFolder));
        Assert.Equal(SourceFormat.Folder, ImageSource.Detect(TestPaths.Photos));
        Assert.Throws<StreamingException>(() => ImageSource.Open(Path.Combine(TestPaths.Samples, "fashion-mnist-mini")));
    }
}
