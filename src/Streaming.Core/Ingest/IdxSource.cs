using System.Buffers.Binary;
using System.IO.Compression;
using System.Runtime.CompilerServices;

namespace Streaming.Core.Ingest;

/// <summary>
/// MNIST-style idx files: an images file (magic 0x00000803, n x rows x cols unsigned bytes), with
/// labels from the matching labels file (magic 0x00000801) when it is there. Either may be gzipped.
/// </summary>
public sealed class IdxSource : ImageSource
{
    private readonly string _images;
    private readonly string? _labels;
    private readonly IReadOnlyList<string> _classNames;

    public IdxSource(string path, IReadOnlyList<string>? classNames = null)
    {
        _images = Directory.Exists(path) ? FindImagesFile(path) : path;
        string name = Path.GetFileName(_images);
        if (!name.Contains("images", StringComparison.Ordinal) && !name.Contains("idx3", StringComparison.Ordinal))
            throw new StreamingException($"{_images}: not an idx images file (expected a name like train-images-idx3-ubyte.gz)");
        string dir = Path.GetDirectoryName(_images) ?? ".";
        string labelsName = name.Replace("images-idx3", "labels-idx1", StringComparison.Ordinal);
        _labels = new[] { labelsName, labelsName.EndsWith(".gz", StringComparison.Ordinal) ? labelsName[..^3] : labelsName + ".gz" }
            .Select(n => Path.Combine(dir, n))
            .FirstOrDefault(p => p != _images && File.Exists(p));
        _classNames = classNames ?? (_labels is null ? [] : WellKnownClassNames(_images) ?? []);
    }

    public override SourceFormat Format => SourceFormat.Idx;
    public override IReadOnlyList<string> ClassNames => _classNames;

    /// <summary>The labels file in use, or null when the images are unlabeled.</summary>
    public string? LabelsPath => _labels;

    private static string FindImagesFile(string dir)
    {
        var candidates = Directory.EnumerateFiles(dir).Where(f => Path.GetFileName(f).Contains("-idx3-ubyte", StringComparison.Ordinal))
            .OrderBy(f => f, StringComparer.Ordinal).ToList();
        return candidates.Count switch
        {
            0 => throw new StreamingException($"{dir}: no idx images file (*-idx3-ubyte[.gz]) in this folder"),
            1 => candidates[0],
            _ => throw new StreamingException($"{dir}: several idx images files ({string.Join(", ", candidates.Select(Path.GetFileName))}); pass one of them as --source"),
        };
    }

    private static Stream OpenMaybeGzip(string path)
    {
        Stream s = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        Span<byte> magic = stackalloc byte[2];
        int n = s.Read(magic);
        s.Position = 0;
        return n == 2 && magic[0] == 0x1f && magic[1] == 0x8b ? new BufferedStream(new GZipStream(s, CompressionMode.Decompress), 1 << 20) : s;
    }

    private static int[] ReadHeader(Stream s, string path, int expectedMagic)
    {
        Span<byte> head = stackalloc byte[4];
        ReadExactly(s, head, path, "header");
        int magic = BinaryPrimitives.ReadInt32BigEndian(head);
        if (magic != expectedMagic)
            throw new StreamingException($"{path}: not an idx {(expectedMagic == 0x803 ? "images" : "labels")} file (magic 0x{magic:x8}, expected 0x{expectedMagic:x8})");
        int dims = expectedMagic & 0xff;
        var sizes = new int[dims];
        for (int i = 0; i < dims; i++)
        {
            ReadExactly(s, head, path, "header");
            sizes[i] = BinaryPrimitives.ReadInt32BigEndian(head);
            if (sizes[i] < 0) throw new StreamingException($"{path}: negative dimension in idx header");
        }
        return sizes;
    }

    private static void ReadExactly(Stream s, Span<byte> buffer, string path, string what)
    {
        try
        {
            s.ReadExactly(buffer);
        }
        catch (EndOfStreamException)
        {
            throw new StreamingException($"{path}: truncated idx file (ended inside the {what})");
        }
        catch (InvalidDataException e)
        {
            throw new StreamingException($"{path}: corrupt gzip stream ({e.Message})");
        }
    }

    public override async IAsyncEnumerable<SourceRecord> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await Task.Yield();
        using var images = OpenMaybeGzip(_images);
        var dims = ReadHeader(images, _images, 0x803);
        int count = dims[0], rows = dims[1], cols = dims[2];
        if ((long)rows * cols > Limits.MaxImagePixels || rows == 0 || cols == 0)
            throw new StreamingException($"{_images}: the header declares {count:N0} images of {rows:N0}x{cols:N0} pixels; an image may have 1 to {Limits.MaxImagePixels:N0} (limits.max_pixels)");
        using var labels = _labels is null ? null : OpenMaybeGzip(_labels);
        if (labels is not null)
        {
            int labelCount = ReadHeader(labels, _labels!, 0x801)[0];
            if (labelCount != count) throw new StreamingException($"{_labels}: {labelCount} labels for {count} images in {_images}");
        }
        string prefix = Path.GetFileName(_images).Split('-')[0];
        int digits = Math.Max(5, (count - 1).ToString(System.Globalization.CultureInfo.InvariantCulture).Length);
        byte[] label = new byte[1];
        for (int i = 0; i < count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var pixels = new byte[rows * cols];
            ReadExactly(images, pixels, _images, $"image {i} of {count}");
            int? y = null;
            if (labels is not null)
            {
                ReadExactly(labels, label, _labels!, $"label {i} of {count}");
                y = label[0];
            }
            string id = $"{prefix}-{i.ToString("D" + digits, System.Globalization.CultureInfo.InvariantCulture)}";
            yield return new SourceRecord(id, $"{Path.GetFileName(_images)}#{i}", y, Raw: new RawImage(pixels, cols, rows, 1));
        }
    }
}
