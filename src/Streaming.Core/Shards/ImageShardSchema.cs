using Parquet.Schema;

namespace Streaming.Core.Shards;

/// <summary>The Parquet schema of image shards: standard types only, so any Parquet reader reads them.</summary>
internal static class ImageShardSchema
{
    public static readonly DataField<string> Id = new("id", nullable: false);
    public static readonly DataField<byte[]> Image = new("image", nullable: false);
    public static readonly DataField<int?> Label = new("label", nullable: true);
    public static readonly DataField<string> Source = new("source", nullable: false);
    public static readonly DataField<string> Format = new("format", nullable: false);
    public static readonly DataField<int> Width = new("width", nullable: false);
    public static readonly DataField<int> Height = new("height", nullable: false);
    public static readonly DataField<string> Sha256 = new("sha256", nullable: false);

    /// <summary>The element of the optional <c>tags</c> column: a list of class indices, null for an image with no tags recorded.</summary>
    public static readonly DataField<int> TagElement = new("element", nullable: false);
    public static readonly ListField Tags = new("tags", TagElement);

    public static readonly ParquetSchema Schema = new(Id, Image, Label, Source, Format, Width, Height, Sha256);

    /// <summary>The schema of a dataset with weak labels: <see cref="Schema"/> and <c>tags</c> (list&lt;int32&gt;). Datasets
    /// without tags keep <see cref="Schema"/>, so their shards' bytes do not change.</summary>
    public static readonly ParquetSchema WithTags = new(Id, Image, Label, Source, Format, Width, Height, Sha256, Tags);
}
