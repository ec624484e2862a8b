using CsCheck;
using SkiaSharp;
using Streaming.Core.Datasets;
using Streaming.Core.Decode;
using Xunit;

namespace Streaming.Tests;

public class DecodeTests
{
    /// <summary>
    /// The native codec path (Skia's codec without SkiaSharp's managed wrappers) is available with the SkiaSharp this
    /// project pins, and gives what SkiaSharp's managed API gives: info, scaled sizes, result codes and pixels, for
    /// photos (JPEG, PNG), Fashion-MNIST PNGs and broken files.
    /// </summary>
    [Fact]
    public unsafe void NativeCodec_IsAvailable_AndDecodesAsSkiaSharpDoes()
    {
        Assert.True(SkiaCodec.Available, "the native codec path failed its check against SkiaSharp's managed API; scoring would fall back to the managed one");
        var files = Directory.GetFiles(TestPaths.Photos).Concat(Directory.GetFiles(TestPaths.MiniFolder, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Take(20))
            .Concat(Directory.GetFiles(TestPaths.Bad)).ToList();
        int compared = 0;
        foreach (var file in files)
        {
            byte[] encoded = File.ReadAllBytes(file);
            if (encoded.Length == 0) continue;
            fixed (byte* p = encoded)
            {
                using var data = SKData.Create((IntPtr)p, encoded.Length);
                using var managed = SKCodec.Create(data);
                bool opened = SkiaCodec.TryOpen(p, encoded.Length, out var raw);
                Assert.True((managed is not null) == opened, $"{file}: managed opens {managed is not null}, native {opened}");
                if (managed is null) continue;
                using (raw)
                {
                    var mi = managed.Info;
                    var ri = raw.Info;
                    Assert.Equal((mi.Width, mi.Height), (ri.Width, ri.Height));
                    Assert.Equal(mi.ColorType == SKColorType.Gray8, ri.ColorType == SKColorType.Gray8);
                    foreach (float scale in new[] { 1f, 0.5f, 0.125f })
                        Assert.Equal(managed.GetScaledDimensions(scale), raw.GetScaledDimensions(scale));
                    foreach (var (color, alpha) in new[] { (SKColorType.Rgba8888, SKAlphaType.Unpremul), (SKColorType.Rgba8888, SKAlphaType.Premul), (SKColorType.Gray8, SKAlphaType.Opaque) })
                    {
                        if (color == SKColorType.Gray8 && mi.ColorType != SKColorType.Gray8) continue;
                        var info = new SKImageInfo(mi.Width, mi.Height, color, alpha);
                        if (info.BytesSize64 > 64L << 20) continue;
                        var a = new byte[info.BytesSize];
                        var b = new byte[info.BytesSize];
                        SKCodecResult ra, rb;
                        fixed (byte* pa = a) ra = managed.GetPixels(info, (IntPtr)pa);
                        fixed (byte* pb = b) rb = raw.GetPixels(info, (IntPtr)pb);
                        Assert.Equal(ra, rb);
                        if (ra == SKCodecResult.Success) Assert.True(a.AsSpan().SequenceEqual(b), $"{file}: {color} {alpha} pixels differ");
                        compared++;
                    }
                }
            }
        }
        Assert.True(compared >= 40, $"only {compared} decodes compared");
    }

    [Fact]
    public void PngEncoder_RoundTripsThroughSkia_ForRandomPixels()
    {
        Gen.Select(Gen.Int[1, 40], Gen.Int[1, 40], Gen.Int[0, 1].Select(i => i == 0 ? 1 : 3))
            .SelectMany((w, h, c) => Gen.Byte.Array[w * h * c].Select(p => (w, h, c, p)))
            .Sample(t =>
            {
                int w = t.w, h = t.h, c = t.c;
                byte[] pixels = t.p;
                byte[] png = PngEncoder.Encode(pixels, w, h, c);
                using var bitmap = SKBitmap.Decode(png);
                Assert.NotNull(bitmap);
                Assert.Equal(w, bitmap.Width);
                Assert.Equal(h, bitmap.Height);
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++)
                    {
                        var color = bitmap.GetPixel(x, y);
                        int i = (y * w + x) * c;
                        Assert.Equal(pixels[i], color.Red);
                        Assert.Equal(pixels[c == 1 ? i : i + 1], color.Green);
                        Assert.Equal(pixels[c == 1 ? i : i + 2], color.Blue);
                    }
            }, iter: 100);
    }

    [Fact]
    public void PngEncoder_IsDeterministic()
    {
        var pixels = Enumerable.Range(0, 28 * 28).Select(i => (byte)(i * 7)).ToArray();
        Assert.Equal(PngEncoder.Encode(pixels, 28, 28, 1), PngEncoder.Encode(pixels, 28, 28, 1));
    }

    public static TheoryData<string> PhotoFiles() => new(Directory.EnumerateFiles(TestPaths.Photos).Select(Path.GetFileName).Order(StringComparer.Ordinal)!);

    [Theory]
    [MemberData(nameof(PhotoFiles))]
    public void Check_AcceptsRealPhotos(string file)
    {
        var check = ImageDecoder.Check(File.ReadAllBytes(Path.Combine(TestPaths.Photos, file)));
        Assert.True(check.Ok, check.Detail);
        Assert.True(check.Width > 100 && check.Height > 100);
        Assert.Equal(Path.GetExtension(file) == ".png" ? "png" : "jpeg", check.Format);
    }

    [Theory]
    [InlineData("empty.jpg", QuarantineReasons.Empty)]
    [InlineData("random-bytes.jpg", QuarantineReasons.NotAnImage)]
    [InlineData("text-renamed.png", QuarantineReasons.NotAnImage)]
    [InlineData("truncated.jpg", QuarantineReasons.Corrupt)]
    [InlineData("truncated-midscan.jpg", QuarantineReasons.Truncated)]
    [InlineData("huge-header.png", QuarantineReasons.Oversized)]
    public void Check_RejectsBadFiles_WithTheirReason(string file, string reason)
    {
        var check = ImageDecoder.Check(File.ReadAllBytes(Path.Combine(TestPaths.Bad, file)));
        Assert.False(check.Ok);
        Assert.Equal(reason, check.Reason);
        Assert.False(string.IsNullOrEmpty(check.Detail));
    }

    [Fact]
    public void Check_HugeHeader_ReportsTheDeclaredSize()
    {
        var check = ImageDecoder.Check(File.ReadAllBytes(Path.Combine(TestPaths.Bad, "huge-header.png")));
        Assert.Equal(200000, check.Width);
        Assert.Equal(200000, check.Height);
        Assert.Contains("200000x200000", check.Detail);
    }

    [Fact]
    public void DecodeToTensor_Gray28_NormalizesExactly()
    {
        var pixels = Enumerable.Range(0, 784).Select(i => (byte)(i % 256)).ToArray();
        var png = PngEncoder.Encode(pixels, 28, 28, 1);
        var options = new PreprocessOptions(28, 28, 1, ResizeMode.Stretch, [0.5f], [0.25f]);
        var tensor = new float[784];
        ImageDecoder.DecodeToTensor(png, options, tensor);
        for (int i = 0; i < 784; i++) Assert.Equal((pixels[i] / 255f - 0.5f) / 0.25f, tensor[i], 1e-5f);
    }

    [Fact]
    public void DecodeToTensor_GrayToRgb_ReplicatesTheChannel()
    {
        var pixels = Enumerable.Range(0, 16).Select(i => (byte)(i * 16)).ToArray();
        var png = PngEncoder.Encode(pixels, 4, 4, 1);
        var options = new PreprocessOptions(4, 4, 3, ResizeMode.Stretch, [0f, 0f, 0f], [1f, 1f, 1f]);
        var tensor = new float[48];
        ImageDecoder.DecodeToTensor(png, options, tensor);
        for (int i = 0; i < 16; i++)
        {
            Assert.Equal(pixels[i] / 255f, tensor[i], 1e-5f);
            Assert.Equal(tensor[i], tensor[16 + i]);
            Assert.Equal(tensor[i], tensor[32 + i]);
        }
    }

    [Fact]
    public void DecodeToTensor_RgbToGray_UsesLuma()
    {
        // A solid colour: every output pixel is 0.299 R + 0.587 G + 0.114 B.
        var pixels = new byte[8 * 8 * 3];
        for (int i = 0; i < 64; i++) { pixels[3 * i] = 200; pixels[3 * i + 1] = 100; pixels[3 * i + 2] = 50; }
        var png = PngEncoder.Encode(pixels, 8, 8, 3);
        var tensor = new float[64];
        ImageDecoder.DecodeToTensor(png, new PreprocessOptions(8, 8, 1, ResizeMode.Stretch, [0f], [1f]), tensor);
        float luma = (200 * 0.299f + 100 * 0.587f + 50 * 0.114f) / 255f;
        Assert.All(tensor, v => Assert.Equal(luma, v, 1e-4f));
    }

    [Fact]
    public void DecodeToTensor_CenterCrop_KeepsTheMiddle()
    {
        // 30 x 10, left third black, middle white, right third black: the center crop to 10 x 10 is all white.
        var pixels = new byte[30 * 10];
        for (int y = 0; y < 10; y++) for (int x = 10; x < 20; x++) pixels[y * 30 + x] = 255;
        var png = PngEncoder.Encode(pixels, 30, 10, 1);
        var tensor = new float[100];
        ImageDecoder.DecodeToTensor(png, new PreprocessOptions(10, 10, 1, ResizeMode.ShorterSideCenterCrop, [0f], [1f]), tensor);
        Assert.All(tensor, v => Assert.Equal(1f, v, 1e-5f));
        // Stretching instead squeezes all three thirds in.
        ImageDecoder.DecodeToTensor(png, new PreprocessOptions(10, 10, 1, ResizeMode.Stretch, [0f], [1f]), tensor);
        Assert.True(tensor[0] < 0.1f && tensor[5] > 0.9f && tensor[9] < 0.1f);
    }

    [Theory]
    [InlineData("retina.jpg")]
    [InlineData("hubble_deep_field.jpg")]
    [InlineData("astronaut.jpg")]
    public void ScaledDecode_StaysCloseToFullDecode(string file)
    {
        var bytes = File.ReadAllBytes(Path.Combine(TestPaths.Photos, file));
        var scaled = new float[3 * 224 * 224];
        var full = new float[3 * 224 * 224];
        ImageDecoder.DecodeToTensor(bytes, new PreprocessOptions(224, 224, 3, scaledDecode: true), scaled);
        ImageDecoder.DecodeToTensor(bytes, new PreprocessOptions(224, 224, 3, scaledDecode: false), full);
        double meanAbs = scaled.Zip(full, (a, b) => Math.Abs(a - b)).Average();
        // Normalized units (1 = one std, about 57 grey levels): the two differ by resampling noise only.
        Assert.True(meanAbs < 0.15, $"mean |scaled - full| = {meanAbs}");
        Assert.All(scaled, v => Assert.True(float.IsFinite(v)));
    }

    [Theory]
    [InlineData("astronaut.jpg")]
    [InlineData("hubble_deep_field.jpg")]
    [InlineData("camera.png")]
    public void ImageCropper_GivesWhatDecodeToTensorGives_ForEveryCrop(string file)
    {
        var bytes = File.ReadAllBytes(Path.Combine(TestPaths.Photos, file));
        using var cropper = new ImageCropper(bytes);
        var rng = new Random(7);
        foreach (var (size, channels) in new[] { (28, 1), (28, 3), (96, 3) })
        {
            var options = new PreprocessOptions(size, size, channels, ResizeMode.Stretch, new float[channels], Enumerable.Repeat(1f, channels).ToArray());
            var expected = new float[options.TensorLength];
            var actual = new float[options.TensorLength];
            for (int i = 0; i < 25; i++)
            {
                // Sides from 3% to 90%: small ones take the codec's 1/8 JPEG scale, large ones the full image.
                double fw = 0.03 + 0.87 * rng.NextDouble(), fh = 0.03 + 0.87 * rng.NextDouble();
                var region = new CropRegion(rng.NextDouble() * (1 - fw), rng.NextDouble() * (1 - fh), fw, fh);
                ImageDecoder.DecodeToTensor(bytes, options, expected, region: region);
                cropper.CropToTensor(options, region, actual);
                Assert.True(expected.AsSpan().SequenceEqual(actual), $"{file} {size}x{size}x{channels} crop {region} differs");
            }
        }
        // One decode per size used, each at most the full image.
        Assert.InRange(cropper.DecodedBytes, 1, 8L * 4 * cropper.Width * cropper.Height);
    }

    [Fact]
    public void ImageCropper_RefusesWhatDoesNotDecode()
    {
        Assert.Throws<InvalidDataException>(() => new ImageCropper([]));
        Assert.Throws<InvalidDataException>(() => new ImageCropper(File.ReadAllBytes(Path.Combine(TestPaths.Bad, "random-bytes.jpg"))));
        using var truncated = new ImageCropper(File.ReadAllBytes(Path.Combine(TestPaths.Bad, "truncated-midscan.jpg")));
        var options = new PreprocessOptions(8, 8, 3);
        Assert.Throws<InvalidDataException>(() => truncated.CropToTensor(options, new CropRegion(0.1, 0.1, 0.5, 0.5), new float[options.TensorLength]));
    }

    [Fact]
    public void DecodeToTensor_Throws_OnBadInput()
    {
        var tensor = new float[3 * 8 * 8];
        var options = new PreprocessOptions(8, 8, 3);
        Assert.Throws<InvalidDataException>(() => ImageDecoder.DecodeToTensor(File.ReadAllBytes(Path.Combine(TestPaths.Bad, "random-bytes.jpg")), options, tensor));
        Assert.Throws<InvalidDataException>(() => ImageDecoder.DecodeToTensor(File.ReadAllBytes(Path.Combine(TestPaths.Bad, "truncated-midscan.jpg")), options, tensor));
        Assert.Throws<InvalidDataException>(() => ImageDecoder.DecodeToTensor([], options, tensor));
    }

    [Fact]
    public void PreprocessOptions_ValidatesWhenBuilt()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new PreprocessOptions(0, 10, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => new PreprocessOptions(10, 10, 2));
        Assert.Throws<ArgumentException>(() => new PreprocessOptions(10, 10, 3, mean: [0f]));
        Assert.Throws<ArgumentException>(() => new PreprocessOptions(10, 10, 1, std: [0f]));
    }
}

/// <summary>Alone in its collection: it measures the heap, which parallel tests would move.</summary>
[Collection(nameof(ProcessState))]
public class DecodeMemoryTests
{
    [Fact]
    public void Check_HoldsNoMemory_AfterItReturns()
    {
        // A 1024x1024 RGB PNG: the check decodes it whole (PNG has no scaled decode), 4 MB of pixels a call.
        const int side = 1024;
        var pixels = new byte[side * side * 3];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (byte)(i * 7 / 3);
        byte[] png = PngEncoder.Encode(pixels, side, side, 3);
        Assert.True(ImageDecoder.Check(png).Ok);
        long before = GC.GetTotalMemory(forceFullCollection: true);
        for (int i = 0; i < 30; i++) Assert.True(ImageDecoder.Check(png).Ok);
        long grown = GC.GetTotalMemory(forceFullCollection: true) - before;
        // Kept pixel buffers would be 30 x 4 MB; the pool keeps at most a few.
        Assert.True(grown < 40L << 20, $"the heap grew {grown >> 20} MB over 30 checks");
    }
}
