namespace Streaming.Core.Decode;

/// <summary>Which files are images, by the extensions the decoder reads.</summary>
public static class ImageFiles
{
    public static readonly string[] Extensions = [".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".ico", ".wbmp"];

    public static bool IsImagePath(string path) => Extensions.Contains(Path.GetExtension(path).ToLowerInvariant());
}
