namespace Streaming.Core.Decode;

/// <summary>The outcome of checking one encoded image: its header facts, or why it is bad (a reason code from <see cref="QuarantineReasons"/> and details).</summary>
public readonly record struct ImageCheck(bool Ok, string Format, int Width, int Height, string? Reason, string? Detail)
{
    public static ImageCheck Bad(string reason, string detail, string format = "", int width = 0, int height = 0) => new(false, format, width, height, reason, detail);
}
