using System.Text.Json.Serialization;

namespace Streaming.Core.Datasets;

/// <summary>One line of <c>quarantine.jsonl</c>: a record that was skipped, why (a short code), and the details.</summary>
public sealed record QuarantineEntry(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("source")] string Source,
    [property: JsonPropertyName("reason")] string Reason,
    [property: JsonPropertyName("detail")] string Detail);
