using Parquet;

namespace Streaming.Core.Shards;

/// <summary>Opening Parquet files with one clear error for a file that is not Parquet.</summary>
internal static class ParquetFiles
{
    /// <summary>A reader over <paramref name="stream"/>; a file that does not parse fails with one line naming <paramref name="path"/>.</summary>
    public static async Task<ParquetReader> OpenAsync(Stream stream, string path, CancellationToken cancellationToken)
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
        uint footerLength = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(tail);
        if (footerLength > length - 12) throw new InvalidDataException($"the footer claims {footerLength:N0} bytes of a {length:N0}-byte file");
        var footer = new byte[footerLength];
        stream.Seek(-8 - footerLength, SeekOrigin.End);
        await stream.ReadExactlyAsync(footer, cancellationToken).ConfigureAwait(false);
        ParquetFooter.Check(footer);
        stream.Seek(0, SeekOrigin.Begin);
    }

    public static FileStream OpenRead(string path) => new(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
}
