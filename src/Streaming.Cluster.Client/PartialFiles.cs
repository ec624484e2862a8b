using Streaming.Core.Selection;

namespace Streaming.Cluster.Client;

/// <summary>
/// A partial selector on disk: a folder (<c>partials/NAME/</c>) holding one heaps checkpoint a bucket of
/// <see cref="ClassesPerBucket"/> classes, so that each merge grain reads only its bucket.
/// </summary>
public static class PartialFiles
{
    /// <summary>The folder under a job's output that holds the workers' partials.</summary>
    public const string Folder = "partials";

    /// <summary>Classes a merge grain takes (a bucket); at C = 1,000, 16 grains.</summary>
    public const int ClassesPerBucket = 64;

    public static string Bucket(string outFolder, string partial, int firstClass) =>
        Path.Combine(outFolder, partial, $"bucket-{firstClass / ClassesPerBucket:D5}.arrow");

    /// <summary>Writes a selector as a partial (its buckets in a temporary folder, renamed into place once all are durable).</summary>
    public static async Task WriteAsync(string outFolder, string partial, Selector selector, CancellationToken cancellationToken = default)
    {
        string folder = Path.Combine(outFolder, partial), temp = folder + Streaming.Core.AtomicFile.TempSuffix;
        if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
        Directory.CreateDirectory(temp);
        for (int first = 0; first < selector.Classes; first += ClassesPerBucket)
            await HeapCheckpoint.WriteClassesAsync(Bucket(outFolder, partial + Streaming.Core.AtomicFile.TempSuffix, first), selector, first, ClassesPerBucket, cancellationToken).ConfigureAwait(false);
        Streaming.Core.AtomicFile.CommitDirectory(temp, folder);
    }
}
