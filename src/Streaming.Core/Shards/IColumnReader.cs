namespace Streaming.Core.Shards;

/// <summary>What a byte-array column is handed on value by value: the value's bytes, valid only during the call.</summary>
internal delegate void ByteValueAction(ReadOnlySpan<byte> value);

/// <summary>
/// How a required byte-array column of a row group is read, value by value in row order. The two implementations are
/// the page reader (<see cref="PageColumnReader"/>: PLAIN pages of our own shards, no object a value) and Parquet.Net
/// (<see cref="NetColumnReader"/>: anything); <see cref="ParquetGroupReader"/> asks them in that order.
/// </summary>
internal interface IColumnReader
{
    /// <summary>
    /// Reads <paramref name="rows"/> strings of <paramref name="column"/> into <paramref name="into"/>. False: not a column chunk
    /// this reader reads, and whatever it wrote into <paramref name="into"/> is to be overwritten.
    /// </summary>
    ValueTask<bool> TryReadStringsAsync(ParquetGroupReader group, ParquetColumn column, string[] into, int rows, CancellationToken cancellationToken);

    /// <summary>
    /// Hands on the <paramref name="rows"/> values of <paramref name="column"/>. False: not a column chunk this reader reads;
    /// the values it handed on before it found out are to be discarded.
    /// </summary>
    ValueTask<bool> TryReadBytesAsync(ParquetGroupReader group, ParquetColumn column, int rows, ByteValueAction each, CancellationToken cancellationToken);
}
