using System.Buffers.Binary;
using Parquet;

namespace Streaming.Core.Shards;

/// <summary>
/// The one way a Parquet file is opened here, whoever wrote it: its footer is checked against parquet.thrift
/// (<see cref="ParquetFooter"/>) before Parquet.Net reads it, and a file that is not Parquet fails with one line that
/// names it. Columns are read a row group at a time (<see cref="OpenRowGroup"/>). Behind it, two readers: Parquet.Net's,
/// which reads anything, and one that reads PLAIN byte-array pages itself (<see cref="PageColumnReader"/>), with no
/// object a value, for the columns scoring reads; it hands a column chunk it cannot read to Parquet.Net's.
/// </summary>
public sealed class ParquetFileReader : IAsyncDisposable
{
    private readonly FileStream _stream;
    private readonly ReadBuffers _buffers;
    private readonly bool _ownsBuffers;

    private ParquetFileReader(string path, FileStream stream, ParquetReader reader, ReadBuffers? buffers)
    {
        Path = path;
        _stream = stream;
        Reader = reader;
        _ownsBuffers = buffers is null;
        _buffers = buffers ?? new ReadBuffers();
        Columns = [.. reader.Schema.GetDataFields().Select(ParquetColumn.Read)];
        Fields = [.. reader.Schema.Fields.Select(f => new ParquetField(f.Name, f.IsNullable))];
        PageReader = new PageColumnReader(stream, reader.Metadata, _buffers);
        NetReader = new NetColumnReader(_buffers);
    }

    public string Path { get; }

    public int RowGroupCount => Reader.RowGroupCount;

    /// <summary>Every leaf column, in schema order.</summary>
    public IReadOnlyList<ParquetColumn> Columns { get; }

    /// <summary>The top-level fields (a list or a struct is one), in schema order.</summary>
    public IReadOnlyList<ParquetField> Fields { get; }

    /// <summary>The file's key-value metadata (Hugging Face keeps its features there).</summary>
    public IReadOnlyDictionary<string, string> Metadata => Reader.CustomMetadata;

    /// <summary>The top-level column called <paramref name="name"/> (not one inside a list or struct), or null.</summary>
    public ParquetColumn? Column(string name) => Columns.FirstOrDefault(c => c.Path.Count == 1 && c.Name == name);

    /// <summary>Parquet.Net's reader of the file.</summary>
    internal ParquetReader Reader { get; }

    /// <summary>The two readers of byte-array columns, asked in this order.</summary>
    internal IColumnReader PageReader { get; }

    internal IColumnReader NetReader { get; }

    /// <summary>Opens <paramref name="path"/>. A missing or unreadable file throws as opening a file does; one that is not Parquet, <see cref="StreamingException"/>.</summary>
    /// <param name="bufferSize">The file stream's buffer: small when columns are read in whole chunks, page by page.</param>
    public static Task<ParquetFileReader> OpenAsync(string path, int bufferSize = 1 << 20, CancellationToken cancellationToken = default) =>
        OpenAsync(path, bufferSize, null, cancellationToken);

    /// <param name="buffers">What the page reader reads into, kept by a reader of many files (else the file has its own).</param>
    internal static async Task<ParquetFileReader> OpenAsync(string path, int bufferSize, ReadBuffers? buffers, CancellationToken cancellationToken)
    {
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize);
        try
        {
            var reader = await OpenAsync(stream, path, cancellationToken).ConfigureAwait(false);
            return new ParquetFileReader(path, stream, reader, buffers);
        }
        catch
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>A row group's columns, read by Parquet.Net or page by page.</summary>
    public ParquetGroupReader OpenRowGroup(int group) => new(this, group, Reader.OpenRowGroupReader(group));

    public async ValueTask DisposeAsync()
    {
        await Reader.DisposeAsync().ConfigureAwait(false);
        await _stream.DisposeAsync().ConfigureAwait(false);
        if (_ownsBuffers) _buffers.Dispose();
    }

    /// <summary>Parquet.Net's reader over <paramref name="stream"/>; a file that does not parse fails with one line naming <paramref name="path"/>.</summary>
    private static async Task<ParquetReader> OpenAsync(Stream stream, string path, CancellationToken cancellationToken)
    {
        try
        {
            await CheckFooterAsync(stream, cancellationToken).ConfigureAwait(false);
            var reader = await ParquetReader.CreateAsync(stream, cancellationToken: cancellationToken).ConfigureAwait(false);
            try
            {
                // The schema is decoded on first use: decode it here, so that a corrupt footer fails here, named.
                _ = reader.Schema.GetDataFields();
                _ = reader.RowGroupCount;
                return reader;
            }
            catch
            {
                await reader.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw new StreamingException($"{path}: not a readable Parquet file ({e.Message})", e);
        }
    }

    /// <summary>
    /// The footer's framing (length, magic) and its Thrift structure, checked before Parquet.Net reads it: a corrupt or
    /// hostile footer is refused here instead of sending Parquet.Net's reader round a list of billions of entries.
    /// </summary>
    private static async Task CheckFooterAsync(Stream stream, CancellationToken cancellationToken)
    {
        if (!stream.CanSeek) return;
        long length = stream.Length;
        if (length < 12) throw new InvalidDataException($"{length} bytes is too short for Parquet");
        var tail = new byte[8];
        stream.Seek(-8, SeekOrigin.End);
        await stream.ReadExactlyAsync(tail, cancellationToken).ConfigureAwait(false);
        if (tail[4] != 'P' || tail[5] != 'A' || tail[6] != 'R' || tail[7] != '1') throw new InvalidDataException("no PAR1 magic at the end");
        uint footerLength = BinaryPrimitives.ReadUInt32LittleEndian(tail);
        if (footerLength > length - 12) throw new InvalidDataException($"the footer claims {footerLength:N0} bytes of a {length:N0}-byte file");
        var footer = new byte[footerLength];
        stream.Seek(-8 - footerLength, SeekOrigin.End);
        await stream.ReadExactlyAsync(footer, cancellationToken).ConfigureAwait(false);
        ParquetFooter.Check(footer);
        stream.Seek(0, SeekOrigin.Begin);
    }
}
