using Parquet;
using Parquet.Schema;

namespace Streaming.Core.Shards;

/// <summary>
/// Writes a Parquet table of <see cref="ParquetColumn"/>s, a row group at a time, for the files other folders own (score
/// shards, D-hat, withheld labels, duplicate pairs): they name their columns and write their values; the Parquet
/// writer, its options and its types stay here. The caller owns the stream and commits the file.
/// </summary>
public sealed class ParquetFileWriter : IAsyncDisposable
{
    private readonly ParquetWriter _writer;

    private ParquetFileWriter(ParquetWriter writer) => _writer = writer;

    /// <param name="columns">The schema: the columns in file order.</param>
    /// <param name="compression">The codec; null: Parquet.Net's default options.</param>
    public static async Task<ParquetFileWriter> CreateAsync(IReadOnlyList<ParquetColumn> columns, Stream stream, ShardCompression? compression,
        CancellationToken cancellationToken = default)
    {
        var schema = new ParquetSchema(columns.Select(c => c.TopLevel).ToArray());
        var options = compression is { } c ? new ParquetOptions { CompressionMethod = c.ToParquet() } : null;
        return new ParquetFileWriter(await ParquetWriter.CreateAsync(schema, stream, options, cancellationToken: cancellationToken).ConfigureAwait(false));
    }

    /// <summary>The next row group: write each column once, in schema order, then dispose it.</summary>
    public ParquetGroupWriter CreateRowGroup() => new(_writer.CreateRowGroup());

    /// <summary>Writes the footer.</summary>
    public ValueTask DisposeAsync() => _writer.DisposeAsync();
}
