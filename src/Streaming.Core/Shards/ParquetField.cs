namespace Streaming.Core.Shards;

/// <summary>A top-level field of a Parquet schema: a column, or a list or struct holding columns.</summary>
public sealed record ParquetField(string Name, bool IsNullable);
