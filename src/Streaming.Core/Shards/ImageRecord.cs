namespace Streaming.Core.Shards;

/// <summary>One row of an image shard.</summary>
/// <param name="Id">Unique within the dataset.</param>
/// <param name="Image">The encoded bytes exactly as received (or PNG, for sources of raw pixels).</param>
/// <param name="Label">Class index, or null when unknown (unlabeled data).</param>
/// <param name="Source">Where the image came from: a path, a tar member, a Parquet row.</param>
/// <param name="Format">Encoded format as the decoder names it (jpeg, png, ...); empty when not verified.</param>
/// <param name="Width">Pixel width from the header, 0 when not verified.</param>
/// <param name="Height">Pixel height from the header, 0 when not verified.</param>
/// <param name="Sha256">Lower-case hex SHA-256 of <see cref="Image"/>.</param>
public sealed record ImageRecord(string Id, byte[] Image, int? Label, string Source, string Format, int Width, int Height, string Sha256)
{
    /// <summary>
    /// Weak labels (hashtags mapped to classes): class indices, or null when the image has none recorded. Only the shards
    /// of a dataset with tags have the <c>tags</c> column (<see cref="ImageShardSchema.WithTags"/>).
    /// </summary>
    public int[]? Tags { get; init; }
}
