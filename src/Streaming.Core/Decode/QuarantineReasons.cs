namespace Streaming.Core.Decode;

/// <summary>The reason codes of quarantined records: why an image does not decode (most are found here), or why a record has no usable image.</summary>
public static class QuarantineReasons
{
    public const string Empty = "empty";
    public const string NotAnImage = "not-an-image";
    public const string Corrupt = "corrupt";
    public const string Truncated = "truncated";
    public const string Oversized = "oversized";
    public const string Unreadable = "unreadable";
    public const string NotFound = "not-found";
    public const string BadLabel = "bad-label";
    public const string NoImage = "no-image";
}
