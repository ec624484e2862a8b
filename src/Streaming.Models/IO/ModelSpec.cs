using System.Globalization;
using System.Text.Json;

namespace Streaming.Models.IO;

/// <summary>What a saved model is: its architecture, shape of input and output, and its preprocessing.</summary>
public sealed record ModelSpec(string Arch, int NumClasses, int InChannels, int ImageSize, float[] Mean, float[] Std, IReadOnlyList<string> Classes)
{
    public const string Format = "streaming.model/1";

    /// <summary>The decode settings the model expects: its image size and channels, its normalization, a direct resize for small images and resize + center crop for large ones.</summary>
    public Streaming.Core.Decode.PreprocessOptions Preprocess() =>
        new(ImageSize, ImageSize, InChannels, ImageSize <= 64 ? Streaming.Core.Decode.ResizeMode.Stretch : Streaming.Core.Decode.ResizeMode.ShorterSideCenterCrop, Mean, Std);

    public Dictionary<string, string> ToMetadata() => new(StringComparer.Ordinal)
    {
        ["format"] = Format,
        ["arch"] = Arch,
        ["num_classes"] = NumClasses.ToString(CultureInfo.InvariantCulture),
        ["in_channels"] = InChannels.ToString(CultureInfo.InvariantCulture),
        ["image_size"] = ImageSize.ToString(CultureInfo.InvariantCulture),
        ["mean"] = JsonSerializer.Serialize(Mean),
        ["std"] = JsonSerializer.Serialize(Std),
        ["classes"] = JsonSerializer.Serialize(Classes),
    };

    public static ModelSpec? FromMetadata(IReadOnlyDictionary<string, string> m)
    {
        if (!m.TryGetValue("format", out var f) || f != Format) return null;
        int Int(string k) => int.Parse(m[k], CultureInfo.InvariantCulture);
        return new ModelSpec(m["arch"], Int("num_classes"), Int("in_channels"), Int("image_size"),
            JsonSerializer.Deserialize<float[]>(m["mean"])!, JsonSerializer.Deserialize<float[]>(m["std"])!,
            JsonSerializer.Deserialize<string[]>(m["classes"])!);
    }
}
