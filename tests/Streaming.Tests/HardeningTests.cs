using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Streaming.Core;
using Streaming.Core.Datasets;
using Streaming.Core.Ingest;
using Streaming.Daemon;
using Streaming.Models.IO;
using Xunit;

namespace Streaming.Tests;

/// <summary>
/// Inputs from strangers (issue 18): headers that declare more than the file holds or than memory can take, links
/// out of a folder or round a loop, listen addresses that reach other machines. Each is refused in one line naming the
/// file and the limit, before anything is allocated from it.
/// </summary>
[Collection(nameof(ProcessState))]
public sealed class HardeningTests : IDisposable
{
    private readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    /// <summary>A safetensors file written by hand: the header as given, then <paramref name="dataBytes"/> bytes of data.</summary>
    private string SafeTensorsFile(string name, string header, int dataBytes)
    {
        string path = _tmp.Sub(name);
        var json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Theory]
    [InlineData("""{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}}""", 16, "span 8 bytes, but F32 [4] is 16")]
    [InlineData("""{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,1000]}}""", 16, "outside the file's 16 bytes")]
    [InlineData("""{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}""", 24, "overlap")]
    [InlineData("""{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,16]}}""", 16, "needs more bytes than the file has")]
    [InlineData("""{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,16]}}""", 16, "negative dimension")]
    [InlineData("""{"w":{"dtype":"F32","shape":[4],"data_offsets":[16,0]}}""", 16, "outside")]
    [InlineData("""{"w":{"dtype":"Q4","shape":[4],"data_offsets":[0,16]}}""", 16, "unsupported dtype")]
    [InlineData("""{"w":{"dtype":"F32","shape":[4]}}""", 16, "malformed")]
    [InlineData("""[1,2]""", 16, "not a JSON object")]
    public void SafeTensors_AHeaderThatDoesNotMatchItsData_IsRefused(string header, int dataBytes, string expected)
    {
        string path = SafeTensorsFile("w.safetensors", header, dataBytes);
        var e = Assert.Throws<StreamingException>(() => SafeTensors.Load(path));
        Assert.Contains(expected, e.Message);
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void SafeTensors_AWellFormedFile_StillLoads()
    {
        string path = SafeTensorsFile("ok.safetensors", """{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"I64","shape":[],"data_offsets":[16,24]},"c":{"dtype":"U8","shape":[0],"data_offsets":[24,24]}}""", 24);
        var (tensors, metadata) = SafeTensors.Load(path);
        Assert.Equal(["a", "b", "c"], tensors.Keys.Order());
        Assert.Equal([2L, 2L], tensors["a"].shape);
        Assert.Equal("v", metadata["k"]);
        foreach (var t in tensors.Values) t.Dispose();
    }

    private static DaemonConfig Daemon(TempDir tmp, params string[] sets)
    {
        string teacher = tmp.Sub("teacher.safetensors");
        File.WriteAllText(teacher, "");
        return DaemonConfig.Load(null, [$"teacher={teacher}", $"inbox={tmp.Sub("in")}", $"state={tmp.Sub("st")}", "scoring.k=10", .. sets]);
    }

    [Theory]
    [InlineData("0:8617")]
    [InlineData("[::0]:8617")]
    [InlineData("[::]:8617")]
    [InlineData("*:8617")]
    [InlineData("0.0.0.0:8617")]
    [InlineData("192.168.1.5:8617")]
    [InlineData("[fe80::1]:8617")]
    public void ListenAddress_ReachableFromOtherMachines_NeedsAllowRemote(string listen)
    {
        var e = Assert.Throws<StreamingException>(() => Daemon(_tmp, $"http.listen={listen}"));
        Assert.Contains("http.allow_remote", e.Message);
        Assert.NotNull(Daemon(_tmp, $"http.listen={listen}", "http.allow_remote=true").ParseListen());
    }

    [Theory]
    [InlineData("127.0.0.1:0")]
    [InlineData("127.0.0.2:8617")]
    [InlineData("[::1]:0")]
    [InlineData("localhost:0")]
    public void ListenAddress_Loopback_IsTakenAsItIs(string listen) => Assert.NotNull(Daemon(_tmp, $"http.listen={listen}").ParseListen());

    [Theory]
    [InlineData("example.com:80")]
    [InlineData("127.1:80")]
    [InlineData("8617")]
    public void ListenAddress_NotAnIpAddress_IsRefused(string listen)
    {
        var e = Assert.Throws<StreamingException>(() => Daemon(_tmp, $"http.listen={listen}", "http.allow_remote=true"));
        Assert.Contains("http.listen", e.Message);
    }

    [Fact]
    public void TokenFile_MustHoldALongEnoughToken_AndTheCheckIsExact()
    {
        File.WriteAllText(_tmp.Sub("short"), "abc\n");
        Assert.Contains("at least 16", Assert.Throws<StreamingException>(() => Daemon(_tmp, $"http.token_file={_tmp.Sub("short")}")).Message);
        File.WriteAllText(_tmp.Sub("token"), "0123456789abcdef0123\n");
        Assert.Equal("0123456789abcdef0123", Daemon(_tmp, $"http.token_file={_tmp.Sub("token")}").ReadToken());
        Assert.True(Authorization.Matches("Bearer 0123456789abcdef0123", "0123456789abcdef0123"));
        Assert.False(Authorization.Matches("Bearer 0123456789abcdef012", "0123456789abcdef0123"));
        Assert.False(Authorization.Matches("Basic 0123456789abcdef0123", "0123456789abcdef0123"));
        Assert.False(Authorization.Matches("", "0123456789abcdef0123"));
    }

    [Fact]
    public void ConfigKeys_HaveMaximums()
    {
        var e = Assert.Throws<StreamingException>(() => Daemon(_tmp, "snapshot.keep=100000000"));
        Assert.Contains("snapshot.keep", e.Message);
        Assert.Throws<StreamingException>(() => Daemon(_tmp, "limits.max_member_mb=4096"));
        Assert.Throws<StreamingException>(() => Daemon(_tmp, "limits.max_pixels=600000000"));
        var limits = Daemon(_tmp, "limits.max_member_mb=2", "limits.max_classes=50").SourceLimits;
        Assert.Equal(2L << 20, limits.MaxMemberBytes);
        Assert.Equal(50, limits.MaxClasses);
    }

    [Fact]
    public void MaxPixels_AboveWhatTheDecoderCanSize_IsRefused()
    {
        var e = Assert.Throws<StreamingException>(() => new IngestOptions { MaxPixels = 600_000_000 });
        Assert.Contains("536,870,911", e.Message);
    }

    private static byte[] SomePng() => File.ReadAllBytes(Directory.EnumerateFiles(TestPaths.MiniFolder, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).First());

    private string Tar(string name, params (string Name, byte[] Data)[] members)
    {
        string path = _tmp.Sub(name);
        DaemonTests.WriteTar(path, members);
        return path;
    }

    [Fact]
    public async Task WebDataset_AHugeLabel_QuarantinesThatImage_AndAllocatesNothingForIt()
    {
        string tar = Tar("labels.tar", ("a.png", SomePng()), ("a.cls", "3"u8.ToArray()), ("b.png", SomePng()), ("b.cls", "2000000000"u8.ToArray()));
        var result = await Ingestor.RunAsync(ImageSource.Open(tar), _tmp.Sub("out"), new IngestOptions { Workers = 1 });
        Assert.Equal(1, result.Manifest.Rows);
        Assert.Equal(1, result.Manifest.Quarantined);
        Assert.Equal(4, result.Manifest.ClassCounts.Count);
        string quarantine = File.ReadAllText(Path.Combine(_tmp.Sub("out"), result.Manifest.QuarantineFile!));
        Assert.Contains("limits.max_classes", quarantine);
    }

    [Fact]
    public async Task WebDataset_AMemberOverTheLimit_IsRefusedBeforeItIsRead()
    {
        string tar = Tar("big.tar", ("a.png", SomePng()), ("b.png", new byte[3 << 20]));
        var source = ImageSource.Open(tar, limits: new SourceLimits { MaxMemberBytes = 1 << 20 });
        var e = await Assert.ThrowsAsync<StreamingException>(() => Ingestor.RunAsync(source, _tmp.Sub("out"), new IngestOptions { Workers = 1 }));
        Assert.Contains("member 'b.png' is 3,145,728 bytes, over the limit of 1,048,576", e.Message);
        Assert.Contains(tar, e.Message);
    }

    [Fact]
    public async Task Idx_AHeaderDeclaringHugeImages_IsRefusedBeforeAnyPixelIsRead()
    {
        string dir = _tmp.Sub("idx");
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, "train-images-idx3-ubyte");
        var header = new byte[16];
        BinaryPrimitives.WriteInt32BigEndian(header, 0x803);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), 1);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(8), 100_000);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(12), 100_000);
        File.WriteAllBytes(path, header);
        var e = await Assert.ThrowsAsync<StreamingException>(() => Ingestor.RunAsync(ImageSource.Open(path), _tmp.Sub("out"), new IngestOptions { Workers = 1 }));
        Assert.Contains("100,000x100,000", e.Message);
        Assert.Contains("limits.max_pixels", e.Message);
    }

    [Fact]
    public async Task Parquet_ARowGroupOverTheLimit_IsRefused()
    {
        var ingested = await Ingestor.RunAsync(ImageSource.Open(TestPaths.MiniTar), _tmp.Sub("shards"), new IngestOptions { Workers = 1 });
        string shard = Path.Combine(_tmp.Sub("shards"), ingested.Manifest.Shards[0].File);
        var source = ImageSource.Open(shard, limits: new SourceLimits { MaxRowGroupRows = 10 });
        var e = await Assert.ThrowsAsync<StreamingException>(() => Ingestor.RunAsync(source, _tmp.Sub("out"), new IngestOptions { Workers = 1 }));
        Assert.Contains("over the limit of 10 (limits.max_row_group_rows)", e.Message);
    }

    [Fact]
    public async Task FolderSource_NeverFollowsALinkOutOfTheFolder_OrRoundALoop_NorReadsAPipe()
    {
        string root = _tmp.Sub("photos"), outside = _tmp.Sub("outside");
        Directory.CreateDirectory(Path.Combine(root, "cats", "deeper"));
        Directory.CreateDirectory(outside);
        File.WriteAllBytes(Path.Combine(root, "cats", "a.png"), SomePng());
        File.WriteAllBytes(Path.Combine(outside, "secret.png"), SomePng());
        File.CreateSymbolicLink(Path.Combine(root, "cats", "inside-link.png"), Path.Combine(root, "cats", "a.png"));
        File.CreateSymbolicLink(Path.Combine(root, "cats", "outside-link.png"), Path.Combine(outside, "secret.png"));
        Directory.CreateSymbolicLink(Path.Combine(root, "cats", "deeper", "loop"), root);
        Directory.CreateSymbolicLink(Path.Combine(root, "dogs"), outside);
        File.CreateSymbolicLink(Path.Combine(root, "cats", "dangling.png"), Path.Combine(root, "nowhere.png"));
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", [Path.Combine(root, "cats", "pipe.png")])) mkfifo!.WaitForExit();

        var source = new FolderSource(root);
        Assert.Equal(["cats"], source.ClassNames);
        var records = new List<SourceRecord>();
        await foreach (var r in source.ReadAsync()) records.Add(r);
        Assert.Equal(["cats/a.png", "cats/inside-link.png"], records.Select(r => r.Id).Order(StringComparer.Ordinal));
        Assert.Equal(5, source.Ignored); // the links dogs, outside-link.png, dangling.png and deeper/loop; the pipe
    }

    /// <summary>A torch.save-style zip holding <paramref name="pickle"/> as its data.pkl.</summary>
    private string TorchZip(string name, byte[] pickle)
    {
        string path = _tmp.Sub(name);
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        using (var s = zip.CreateEntry("archive/data.pkl").Open()) s.Write(pickle);
        using (var s = zip.CreateEntry("archive/version").Open()) s.Write("3\n"u8);
        return path;
    }

    [Fact]
    public void PtFile_APickleThatWouldRunACommand_IsRefusedBeforeUnpickling()
    {
        string marker = _tmp.Sub("ran");
        // What pickle.dumps(obj, protocol=2) gives for an object whose __reduce__ returns (os.system, ("touch MARKER",)).
        var command = Encoding.ASCII.GetBytes($"touch {marker}");
        var pickle = new List<byte> { 0x80, 0x02 };
        pickle.AddRange("cposix\nsystem\n"u8.ToArray());
        pickle.AddRange(new byte[] { (byte)'q', 0 });
        pickle.Add((byte)'X');
        pickle.AddRange(BitConverter.GetBytes(command.Length));
        pickle.AddRange(command);
        pickle.AddRange(new byte[] { (byte)'q', 1, 0x85, (byte)'q', 2, (byte)'R', (byte)'q', 3, (byte)'.' });
        string path = TorchZip("evil.pt", pickle.ToArray());

        var e = Assert.Throws<StreamingException>(() => PickleGuard.Check(path));
        Assert.Contains("imports posix.system", e.Message);
        var spec = new ModelSpec("cnn-small", 10, 1, 28, [0.5f], [0.5f], []);
        e = Assert.Throws<StreamingException>(() => ModelFile.Load(path, spec));
        Assert.Contains("imports posix.system", e.Message);
        Assert.False(File.Exists(marker));

        // The same trick through STACK_GLOBAL (protocol 4), and through a memoized string.
        Assert.Equal("imports builtins.eval", PickleGuard.FirstDisallowed([0x80, 4, 0x8c, 8, .. "builtins"u8, 0x94, 0x8c, 4, .. "eval"u8, 0x94, 0x93, (byte)'.']));
        Assert.Equal("imports builtins.eval", PickleGuard.FirstDisallowed([0x80, 4, 0x8c, 4, .. "eval"u8, 0x94, 0x8c, 8, .. "builtins"u8, 0x94, (byte)'h', 1, (byte)'h', 0, 0x93, (byte)'.']));
        Assert.StartsWith("has unknown opcode", PickleGuard.FirstDisallowed([0x80, 2, 0xff, (byte)'.']));
    }

    [Fact]
    public void PtFile_ARealTorchvisionStateDict_PassesTheGuard()
    {
        string path = _tmp.Sub("resnet18.pt");
        using (var gz = new GZipStream(File.OpenRead(TestPaths.Fixture("resnet18-torchvision.pt.gz")), CompressionMode.Decompress))
        using (var file = File.Create(path)) gz.CopyTo(file);
        PickleGuard.Check(path);
    }

    [Fact]
    public void Onnx_AFileOverTheLimit_IsRefusedBeforeItIsParsed()
    {
        string path = _tmp.Sub("big.onnx");
        using (var f = File.Create(path)) f.SetLength(Streaming.Models.Teachers.OnnxTeacher.MaxBytes + 1); // sparse
        var e = Assert.Throws<StreamingException>(() => new Streaming.Models.Teachers.OnnxTeacher(path));
        Assert.Contains("over the limit", e.Message);
    }

    [Fact]
    public void Health_SaysFailedStuckUnhealthyDegradedOrOk_InThatOrder()
    {
        var status = new DaemonStatus { StuckAfter = TimeSpan.FromMilliseconds(100) };
        status.Beat();
        Assert.Equal((true, "ok"), status.Health());
        status.Degraded = "the state folder's disk is full";
        Assert.Equal((true, "degraded: the state folder's disk is full"), status.Health());
        status.CheckpointFailed = "No space left on device";
        Assert.Equal((false, "unhealthy: the heaps checkpoint failed: No space left on device"), status.Health());
        status.Beat("drop a.tar");
        Thread.Sleep(300);
        Assert.False(status.Health().Healthy);
        Assert.StartsWith("unhealthy: the inbox loop has not moved for", status.Health().Text);
        Assert.EndsWith("on drop a.tar", status.Health().Text);
        status.Fatal = "the scoring graph failed: boom";
        Assert.Equal((false, "failed: the scoring graph failed: boom"), status.Health());
        var metrics = DaemonTests.ParsePrometheus(status.Metrics());
        Assert.Equal(0, metrics["streaming_healthy"]);
        Assert.Equal(1, metrics["streaming_degraded"]);
    }
}
