using Parquet;

namespace Streaming.Core.Shards;

/// <summary>One row group of a <see cref="ParquetFileWriter"/>: each column's values, written in schema order.</summary>
public sealed class ParquetGroupWriter : IDisposable
{
    private readonly ParquetRowGroupWriter _rg;

    internal ParquetGroupWriter(ParquetRowGroupWriter rg) => _rg = rg;

    public Task WriteAsync(ParquetColumn column, IReadOnlyCollection<string> values) => _rg.WriteAsync(column.Leaf, values);

    public Task WriteAsync(ParquetColumn column, IReadOnlyCollection<byte[]> values) => _rg.WriteAsync(column.Leaf, values);

    public Task WriteAsync<T>(ParquetColumn column, ReadOnlyMemory<T> values, CancellationToken cancellationToken = default) where T : struct =>
        _rg.WriteAsync<T>(column.Leaf, values, cancellationToken: cancellationToken);

    public Task WriteAsync<T>(ParquetColumn column, ReadOnlyMemory<T?> values, CancellationToken cancellationToken = default) where T : struct =>
        _rg.WriteAsync<T>(column.Leaf, values, cancellationToken: cancellationToken);

    /// <summary>
    /// A list column (<see cref="ParquetColumn.List{T}"/>) from its raw parts: the present elements packed, and one
    /// definition and one repetition level an entry (repetition 0 where a row's list starts).
    /// </summary>
    public Task WriteListAsync<T>(ParquetColumn column, ReadOnlyMemory<T> values, ReadOnlyMemory<int> definition, ReadOnlyMemory<int> repetition,
        CancellationToken cancellationToken = default) where T : struct =>
        _rg.WriteAllPartsAsync<T>(column.Leaf, values, definition, repetition, cancellationToken);

    public void Dispose() => _rg.Dispose();
}
