using Parquet;

namespace Streaming.Core;

/// <summary>Opening Parquet files with one clear error for a file that is not Parquet.</summary>
internal static class ParquetFiles
{
    /// <summary>A reader over <paramref name="stream"/>; a file that does not parse fails with one line naming <paramref name="path"/>.</summary>
    public static async Task<ParquetReader> OpenAsync(Stream stream, string path, CancellationToken cancellationToken)
    {
        try
        {
            return await ParquetReader.CreateAsync(stream, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw new StreamingException($"{path}: not a readable Parquet file ({e.Message})", e);
        }
    }

    public static FileStream OpenRead(string path) => new(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
}
