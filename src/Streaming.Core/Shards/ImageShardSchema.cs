using Parquet.Schema;

namespace Streaming.Core.Shards;

/// <summary>The Parquet schema of image shards: standard types only, so any Parquet reader reads them.</summary>
public static class ImageShardSchema
{
    public static readonly DataField<string> Id = new("id", nullable: false);
    public static readonly DataField<byte[]> Image = new("image", nullable: false);
    public static readonly DataField<int?> Label = new("label", nullable: true);
    public static readonly DataField<string> Source = new("source", nullable: false);
    public static readonly DataField<string> Format = new("format", nullable: false);
    public static readonly DataField<int> Width = new("width", nullable: false);
    public static readonly DataField<int> Height = new("height", nullable: false);
    public static readonly DataField<string> Sha256 = new("sha256", nullable: false);

    public static readonly ParquetSchema Schema = new(Id, Image, Label, Source, Format, Width, Height, Sha256);
}
