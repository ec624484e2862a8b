namespace Streaming.Core.Shards;

/// <summary>
/// Parquet.Net's path behind <see cref="ParquetFileReader"/>: reads any byte-array column chunk (dictionaries, nullable
/// columns, every codec), a row's value at a time. A null value is an error here: the columns read this way are required.
/// </summary>
internal sealed class NetColumnReader(ReadBuffers buffers) : IColumnReader
{
    public async ValueTask<bool> TryReadStringsAsync(ParquetGroupReader group, ParquetColumn column, string[] into, int rows, CancellationToken cancellationToken)
    {
        await group.ReadAsync(column, into.AsMemory(0, rows)!, cancellationToken).ConfigureAwait(false);
        for (int i = 0; i < rows; i++)
            if (into[i] is null) throw new InvalidDataException($"row {i} of row group {group.Index} has a null {column.Name}");
        return true;
    }

    public async ValueTask<bool> TryReadBytesAsync(ParquetGroupReader group, ParquetColumn column, int rows, ByteValueAction each, CancellationToken cancellationToken)
    {
        if (buffers.Rows.Length < rows) buffers.Rows = new byte[rows][];
        var values = buffers.Rows;
        try
        {
            await group.ReadAsync(column, values.AsMemory(0, rows)!, cancellationToken).ConfigureAwait(false);
            long total = 0;
            for (int i = 0; i < rows; i++)
                total += (values[i] ?? throw new InvalidDataException($"row {i} of row group {group.Index} has a null {column.Name}")).Length;
            if (total > Array.MaxLength) throw new InvalidDataException($"row group {group.Index} holds {total:N0} bytes of {column.Name}s, more than one buffer can");
            for (int i = 0; i < rows; i++) each(values[i]);
            return true;
        }
        finally
        {
            Array.Clear(values, 0, rows); // the rows are the file's, not the buffers'
        }
    }
}
