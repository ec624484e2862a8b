using System.Buffers.Binary;
using CsCheck;
using SkiaSharp;
using Streaming.Core;
using Streaming.Core.Decode;
using Streaming.Core.Ingest;
using Streaming.Core.Shards;
using Xunit;

namespace Streaming.Tests;

/// <summary>
/// Property tests over broken inputs (issue 18): real tar, idx, Parquet, PNG and JPEG files, cut short, with bits
/// flipped, or with a 32-bit field overwritten by a huge length. Ingest and scoring's shard reader may refuse an input,
/// always with a <see cref="StreamingException"/> naming it, or take it (bad images quarantined); nothing else may
/// happen: no other exception, no hang, no runaway allocation. Each test says how many cases ran.
/// </summary>
public sealed class FuzzTests(ITestOutputHelper output) : IDisposable
{
    /// <summary>Mutated cases a format: 150 in the suite; STREAMING_FUZZ_CASES asks for a longer hunt.</summary>
    private static readonly int Cases = int.TryParse(Environment.GetEnvironmentVariable("STREAMING_FUZZ_CASES"), out int n) && n > 0 ? n : 150;
    private readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    /// <summary>The input cut short, with 1 to 8 bits flipped, or with a huge value written over 4 bytes (either byte order).</summary>
    private static Gen<byte[]> Mutated(byte[] original) => Gen.OneOf<byte[]>(
        Gen.Int[0, original.Length - 1].Select(n => original[..n]),
        Gen.Select(Gen.Int[0, original.Length - 1].Array[1, 8], Gen.Int[0, 7].Array[8]).Select((at, bits) =>
        {
            var b = (byte[])original.Clone();
            for (int i = 0; i < at.Length; i++) b[at[i]] ^= (byte)(1 << bits[i]);
            return b;
        }),
        Gen.Select(Gen.Int[0, original.Length - 4], Gen.OneOf(0x7FFFFFFFu, 0xFFFFFFFFu, 0x80000000u, 0x40000000u, 0x00FFFFFFu), Gen.Bool).Select((at, value, little) =>
        {
            var b = (byte[])original.Clone();
            if (little) BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at), value);
            else BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(at), value);
            return b;
        }));

    /// <summary>One mutation of the kinds <see cref="Mutated"/> draws, from a seeded generator (for the daemon's fuzz drops).</summary>
    internal static byte[] MutateOnce(byte[] original, Random rng)
    {
        var b = (byte[])original.Clone();
        switch (rng.Next(3))
        {
            case 0:
                return original[..rng.Next(original.Length)];
            case 1:
                for (int i = rng.Next(1, 9); i > 0; i--) b[rng.Next(b.Length)] ^= (byte)(1 << rng.Next(8));
                return b;
            default:
                BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(rng.Next(b.Length - 4)), rng.Next(2) == 0 ? 0x7FFFFFFFu : 0xFFFFFFFFu);
                return b;
        }
    }

    internal static byte[] Png(int i) => File.ReadAllBytes(Directory.EnumerateFiles(TestPaths.MiniFolder, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ElementAt(i));

    private static byte[] Jpeg()
    {
        using var bitmap = new SKBitmap(48, 40);
        for (int y = 0; y < 40; y++)
            for (int x = 0; x < 48; x++) bitmap.SetPixel(x, y, new SKColor((byte)(x * 5), (byte)(y * 6), (byte)(x ^ y)));
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(SKEncodedImageFormat.Jpeg, 90);
        return data.ToArray();
    }

    /// <summary>Ingests one input file (named as its format wants); true when it was taken, false when refused with a StreamingException.</summary>
    private bool Ingests(string name, byte[] bytes, bool folder = false)
    {
        string dir = _tmp.Sub(Guid.NewGuid().ToString("N"));
        string input = folder ? Path.Combine(dir, "in") : dir;
        Directory.CreateDirectory(input);
        File.WriteAllBytes(Path.Combine(input, name), bytes);
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            Ingestor.RunAsync(ImageSource.Open(folder ? input : Path.Combine(input, name)), Path.Combine(dir, "out"), new IngestOptions { Workers = 1 },
                cancellationToken: timeout.Token).GetAwaiter().GetResult();
            return true;
        }
        catch (StreamingException)
        {
            return false;
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    /// <summary>A case that runs this long is a hang (a parser looping on a length): the test fails instead of waiting for ever.</summary>
    private static readonly TimeSpan Hang = TimeSpan.FromSeconds(30);

    private void Run(string what, byte[] original, Func<byte[], bool> takes)
    {
        Assert.True(takes(original), $"the unmutated {what} must be taken");
        int taken = 0, refused = 0;
        Mutated(original).Sample(bytes =>
        {
            var run = Task.Run(() => takes(bytes));
            if (!run.Wait(Hang)) throw new TimeoutException($"{what}: a mutated input of {bytes.Length} bytes did not finish within {Hang.TotalSeconds} s: {Convert.ToHexString(bytes)}");
            if (run.Result) Interlocked.Increment(ref taken);
            else Interlocked.Increment(ref refused);
        }, iter: Cases, threads: 1);
        output.WriteLine($"{what}: {taken + refused} mutated cases ({taken} taken, {refused} refused with a StreamingException)");
        Assert.Equal(Cases, taken + refused);
    }

    [Fact]
    public void Tar_Mutated_IsTakenOrRefused_NeverCrashes()
    {
        string tar = _tmp.Sub("small.tar");
        DaemonTests.WriteTar(tar, ("a.png", Png(0)), ("a.cls", "1"u8.ToArray()), ("b.png", Png(1)), ("b.cls", "2"u8.ToArray()));
        Run("tar", File.ReadAllBytes(tar), b => Ingests("small.tar", b));
    }

    [Fact]
    public void Idx_Mutated_IsTakenOrRefused_NeverCrashes()
    {
        var idx = new byte[16 + 3 * 28 * 28];
        BinaryPrimitives.WriteInt32BigEndian(idx, 0x803);
        BinaryPrimitives.WriteInt32BigEndian(idx.AsSpan(4), 3);
        BinaryPrimitives.WriteInt32BigEndian(idx.AsSpan(8), 28);
        BinaryPrimitives.WriteInt32BigEndian(idx.AsSpan(12), 28);
        new Random(1).NextBytes(idx.AsSpan(16));
        Run("idx", idx, b => Ingests("train-images-idx3-ubyte", b));
    }

    [Fact]
    public async Task ParquetShard_Mutated_IsTakenOrRefused_ByIngestAndByScoringsReader()
    {
        string tar = _tmp.Sub("three.tar");
        DaemonTests.WriteTar(tar, ("a.png", Png(0)), ("b.png", Png(1)), ("c.png", Png(2)));
        var ingested = await Ingestor.RunAsync(ImageSource.Open(tar), _tmp.Sub("shards"), new IngestOptions { Workers = 1 });
        var shard = File.ReadAllBytes(Path.Combine(_tmp.Sub("shards"), ingested.Manifest.Shards[0].File));
        Run("Parquet shard (ingest)", shard, b => Ingests("shard.parquet", b));
        Run("Parquet shard (scoring's reader)", shard, b =>
        {
            string path = _tmp.Sub(Guid.NewGuid().ToString("N") + ".parquet");
            File.WriteAllBytes(path, b);
            try
            {
                return ReadAll(path).GetAwaiter().GetResult();
            }
            catch (StreamingException)
            {
                return false;
            }
            finally
            {
                File.Delete(path);
            }
        });
    }

    private static async Task<bool> ReadAll(string path)
    {
        await using var columns = await ShardImageColumns.OpenAsync(path);
        for (int g = 0; g < columns.RowGroupCount; g++) await columns.ReadRowGroupAsync(g);
        return true;
    }

    [Theory]
    [InlineData("png")]
    [InlineData("jpeg")]
    public void Image_Mutated_IsQuarantinedOrTaken_NeverCrashes(string format)
    {
        byte[] original = format == "png" ? Png(0) : Jpeg();
        int quarantined = 0;
        Run(format, original, b =>
        {
            // The decoder's own check reports, never throws; an ingest of a folder holding it goes through.
            var check = ImageDecoder.Check(b);
            if (!check.Ok) Interlocked.Increment(ref quarantined);
            Assert.True(Ingests("x." + format, b, folder: true) || !check.Ok);
            return true;
        });
        output.WriteLine($"{format}: {quarantined} of {Cases} mutated images quarantined by the decode check");
    }

    /// <summary>The mutated shard the fuzzer found (one STOP byte turned into 0x10) that sent Parquet.Net's footer reader round for ever.</summary>
    [Fact]
    public async Task TheFooterThatLoopedParquetNet_IsRefusedAtOnce()
    {
        string path = TestPaths.Fixture("corrupt-footer.parquet");
        var open = Task.Run(async () =>
        {
            var e = await Assert.ThrowsAsync<StreamingException>(() => Ingestor.RunAsync(ImageSource.Open(path), _tmp.Sub("out"), new IngestOptions { Workers = 1 }));
            Assert.Contains("has no type", e.Message);
            await Assert.ThrowsAsync<StreamingException>(() => ShardImageColumns.OpenAsync(path));
        });
        Assert.True(await Task.WhenAny(open, Task.Delay(Hang)) == open, "it hung");
        await open;
    }
}
