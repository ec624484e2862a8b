using SkiaSharp;

namespace Streaming.Core.Plots;

/// <summary>The white drawing surface every chart and sheet starts from, and its PNG file at the end.</summary>
internal static class PngSurface
{
    /// <summary>A white RGBA surface of the given size (at least 1 x 1).</summary>
    public static SKSurface Create(int width, int height)
    {
        var surface = SKSurface.Create(new SKImageInfo(Math.Max(1, width), Math.Max(1, height), SKColorType.Rgba8888, SKAlphaType.Premul))
            ?? throw new InvalidOperationException("could not create a drawing surface");
        surface.Canvas.Clear(SKColors.White);
        return surface;
    }

    /// <summary>Encodes the surface as PNG into <paramref name="path"/>, creating its folder.</summary>
    public static void Save(SKSurface surface, string path)
    {
        using var image = surface.Snapshot();
        using var png = image.Encode(SKEncodedImageFormat.Png, 100);
        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        using var file = File.Create(path);
        png.SaveTo(file);
    }

    /// <summary>
    /// <paramref name="text"/>, shortened with an ellipsis when it is wider than <paramref name="width"/>: keeping
    /// its end (the end of an id or a path is the part that tells them apart), or its start for names.
    /// </summary>
    public static string Fit(string text, SKFont font, float width, bool keepEnd = true)
    {
        if (font.MeasureText(text) <= width) return text;
        if (keepEnd)
        {
            while (text.Length > 1 && font.MeasureText("…" + text) > width) text = text[1..];
            return "…" + text;
        }
        while (text.Length > 1 && font.MeasureText(text + "…") > width) text = text[..^1];
        return text.TrimEnd() + "…";
    }
}
