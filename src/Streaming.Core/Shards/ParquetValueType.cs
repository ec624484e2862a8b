namespace Streaming.Core.Shards;

/// <summary>What a Parquet column's values are, as this engine reads them.</summary>
public enum ParquetValueType
{
    /// <summary>A type nothing here reads (dates, decimals, ...).</summary>
    Other,
    Boolean,
    Int32,
    Int64,
    Float,
    Double,
    /// <summary>UTF-8 text (a BYTE_ARRAY with the string annotation).</summary>
    String,
    /// <summary>Bytes (a BYTE_ARRAY without one).</summary>
    Binary,
}
