using Streaming.Core.Decode;
namespace Streaming.Core.Ingest;

/// <summary>Raw pixels that ingestion encodes as PNG (for sources such as idx files that carry no encoding).</summary>
public sealed record RawImage(byte[] Pixels, int Width, int Height, int Channels);

/// <summary>
/// One item read from a source: encoded bytes, raw pixels, or an error that the source met while
/// reading it (a file that vanished, an unreadable member). Exactly one of the three is set.
/// </summary>
public sealed record SourceRecord(string Id, string Source, int? Label, byte[]? Encoded = null, RawImage? Raw = null, SourceError? Error = null)
{
    /// <summary>Weak labels as class indices (<see cref="TagMapper"/>); null when the item has none recorded.</summary>
    public int[]? Tags { get; init; }
}

/// <summary>Why a source could not deliver an item: a reason code from <see cref="Decode.QuarantineReasons"/> and details.</summary>
public sealed record SourceError(string Reason, string Detail);
