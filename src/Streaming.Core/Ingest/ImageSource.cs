namespace Streaming.Core.Ingest;

/// <summary>
/// A collection of images to ingest. Enumeration is sequential and deterministic (sorted paths,
/// file order). A source that cannot be used at all throws <see cref="StreamingException"/> naming the
/// file; a single bad item is yielded as a <see cref="SourceRecord"/> with an error, and the run goes on.
/// </summary>
public abstract class ImageSource
{

    public abstract SourceFormat Format { get; }

    /// <summary>Class names, index = label. Complete once enumeration has finished; empty when the source has none.</summary>
    public abstract IReadOnlyList<string> ClassNames { get; }

    /// <summary>Inputs that were seen but are not images and were not counted (for example README files in a folder).</summary>
    public long Ignored { get; protected set; }

    /// <summary>
    /// Whether the source carries weak labels (tags), so that the dataset gets a <c>tags</c> column: a Parquet tags column,
    /// a list file's third field, WebDataset <c>.tags</c> or <c>.json</c> members (looked for in the first samples).
    /// </summary>
    public virtual bool HasTags => false;

    /// <summary>Maps the source's tags to its classes; made on first use, once the class names are known.</summary>
    protected TagMapper TagMapper => _tagMapper ??= new TagMapper(ClassNames, Limits.MaxClasses);
    private TagMapper? _tagMapper;

    /// <summary>What the source's headers may declare before it refuses them.</summary>
    public SourceLimits Limits { get; init; } = SourceLimits.Default;

    public abstract IAsyncEnumerable<SourceRecord> ReadAsync(CancellationToken cancellationToken = default);

    /// <summary>Opens a source, detecting its format from the path when <paramref name="format"/> is Auto.</summary>
    public static ImageSource Open(string path, SourceFormat format = SourceFormat.Auto, IReadOnlyList<string>? classNames = null,
        string? imageColumn = null, string? labelColumn = null, SourceLimits? limits = null, string? tagsColumn = null)
    {
        limits ??= SourceLimits.Default;
        if (!File.Exists(path) && !Directory.Exists(path)) throw new StreamingException($"{path}: no such file or folder");
        if (format == SourceFormat.Auto) format = Detect(path);
        return format switch
        {
            SourceFormat.Idx => new IdxSource(path, classNames) { Limits = limits },
            SourceFormat.Folder => new FolderSource(path) { Limits = limits },
            SourceFormat.WebDataset => new WebDatasetSource(path, classNames) { Limits = limits },
            SourceFormat.Parquet => new ParquetImageSource(path, classNames, imageColumn, labelColumn, tagsColumn) { Limits = limits },
            SourceFormat.List => new ListSource(path, classNames) { Limits = limits },
            SourceFormat.DigitsJson => new DigitsJsonSource(path),
            _ => throw new ArgumentOutOfRangeException(nameof(format)),
        };
    }

    /// <summary>Guesses the format of a path; see <see cref="SourceFormat"/>.</summary>
    public static SourceFormat Detect(string path)
    {
        string name = Path.GetFileName(Path.TrimEndingDirectorySeparator(path)).ToLowerInvariant();
        if (File.Exists(path))
        {
            if (name.Contains("-idx") || name.EndsWith(".idx", StringComparison.Ordinal)) return SourceFormat.Idx;
            if (WebDatasetSource.IsTarName(name)) return SourceFormat.WebDataset;
            if (name.EndsWith(".parquet", StringComparison.Ordinal)) return SourceFormat.Parquet;
            if (name.EndsWith(".txt", StringComparison.Ordinal) || name.EndsWith(".lst", StringComparison.Ordinal) || name.EndsWith(".list", StringComparison.Ordinal))
                return SourceFormat.List;
            throw new StreamingException($"{path}: cannot tell the format from the file name; pass --format");
        }
        if (DigitsJsonSource.FolderOf(path) is not null) return SourceFormat.DigitsJson;
        var files = Directory.EnumerateFiles(path).Select(f => Path.GetFileName(f).ToLowerInvariant()).ToList();
        if (files.Any(f => f.Contains("-idx3-ubyte"))) return SourceFormat.Idx;
        if (files.Any(WebDatasetSource.IsTarName)) return SourceFormat.WebDataset;
        if (files.Any(f => f.EndsWith(".parquet", StringComparison.Ordinal))) return SourceFormat.Parquet;
        return SourceFormat.Folder;
    }

    /// <summary>Known class names for well-known datasets, recognised from the path.</summary>
    internal static IReadOnlyList<string>? WellKnownClassNames(string path)
    {
        string p = path.ToLowerInvariant();
        if (p.Contains("fashion")) return FashionMnistClasses;
        if (p.Contains("mnist")) return ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
        return null;
    }

    public static readonly IReadOnlyList<string> FashionMnistClasses =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
}
