using Parquet;

namespace Streaming.Core.Shards;

/// <summary>
/// One row group of a <see cref="ParquetFileReader"/>: its row count, and its columns read into the caller's memory. Flat
/// and list columns are read by Parquet.Net; required byte-array columns (<see cref="ReadStringsAsync"/>,
/// <see cref="ReadBytesAsync"/>) page by page where the page reader can, else by Parquet.Net.
/// </summary>
public sealed class ParquetGroupReader : IDisposable
{
    private readonly ParquetFileReader _file;
    private readonly ParquetRowGroupReader _rg;

    internal ParquetGroupReader(ParquetFileReader file, int index, ParquetRowGroupReader rg)
    {
        _file = file;
        Index = index;
        _rg = rg;
    }

    /// <summary>The row group's index in its file.</summary>
    public int Index { get; }

    /// <summary>The rows the footer declares (a stranger's file may declare anything: check before sizing from it).</summary>
    public long RowCount => _rg.RowCount;

    public ValueTask ReadAsync(ParquetColumn column, Memory<string?> into, CancellationToken cancellationToken = default) =>
        _rg.ReadAsync(column.Leaf, into, cancellationToken: cancellationToken);

    public ValueTask ReadAsync(ParquetColumn column, Memory<byte[]?> into, CancellationToken cancellationToken = default) =>
        _rg.ReadAsync(column.Leaf, into, cancellationToken: cancellationToken);

    public ValueTask ReadAsync<T>(ParquetColumn column, Memory<T> into, CancellationToken cancellationToken = default) where T : struct =>
        _rg.ReadAsync<T>(column.Leaf, into, cancellationToken: cancellationToken);

    public ValueTask ReadAsync<T>(ParquetColumn column, Memory<T?> into, CancellationToken cancellationToken = default) where T : struct =>
        _rg.ReadAsync<T>(column.Leaf, into, cancellationToken: cancellationToken);

    /// <summary>How many values (list elements and nulls included) the column chunk declares; null when it has no metadata.</summary>
    public long? ValueCount(ParquetColumn column) => _rg.GetMetadata(column.Leaf)?.MetaData?.NumValues;

    /// <summary>A column's defined values packed, with one definition and one repetition level an entry (the raw parts of a list column).</summary>
    public ValueTask ReadRawAsync<T>(ParquetColumn column, Memory<T> values, Memory<int> definition, Memory<int> repetition, CancellationToken cancellationToken = default)
        where T : struct =>
        _rg.ReadRawAsync<T>(column.Leaf, values, definition, repetition, cancellationToken);

    /// <summary>A list column's lists, one a row: null where a row's list is null (when <paramref name="listNullable"/>), null elements dropped.</summary>
    public Task<T[]?[]> ReadListsAsync<T>(ParquetColumn column, int rows, bool listNullable, CancellationToken cancellationToken = default) where T : struct =>
        ParquetLists.ReadAsync<T>(_rg, column.Leaf, rows, listNullable, cancellationToken);

    /// <summary>
    /// The <paramref name="rows"/> strings of a required column into <paramref name="into"/>; true when the page reader read
    /// them, false when Parquet.Net did.
    /// </summary>
    internal async ValueTask<bool> ReadStringsAsync(ParquetColumn column, string[] into, int rows, CancellationToken cancellationToken)
    {
        if (await _file.PageReader.TryReadStringsAsync(this, column, into, rows, cancellationToken).ConfigureAwait(false)) return true;
        await _file.NetReader.TryReadStringsAsync(this, column, into, rows, cancellationToken).ConfigureAwait(false);
        return false;
    }

    /// <summary>
    /// The <paramref name="rows"/> values of a required byte-array column, handed on in row order; true when the page reader
    /// read them, false when Parquet.Net did. <paramref name="restart"/> is called before Parquet.Net hands them on again, when
    /// the page reader gave up part way.
    /// </summary>
    internal async ValueTask<bool> ReadBytesAsync(ParquetColumn column, int rows, ByteValueAction each, Action restart, CancellationToken cancellationToken)
    {
        if (await _file.PageReader.TryReadBytesAsync(this, column, rows, each, cancellationToken).ConfigureAwait(false)) return true;
        restart();
        await _file.NetReader.TryReadBytesAsync(this, column, rows, each, cancellationToken).ConfigureAwait(false);
        return false;
    }

    public void Dispose() => _rg.Dispose();
}
