using System.Text.Json.Serialization;

namespace Streaming.Core.Datasets;

/// <summary>One line of <c>quarantine.jsonl</c>: a record that was skipped, why (a short code), and the details.</summary>
public sealed record QuarantineEntry(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("source")] string Source,
    [property: JsonPropertyName("reason")] string Reason,
    [property: JsonPropertyName("detail")] string Detail);

/// <summary>The reason codes of quarantined records.</summary>
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
