using System.Runtime.CompilerServices;
using System.Text.Json;
using Streaming.Core.Decode;
using Streaming.Core.Shards;

namespace Streaming.Core.Ingest;

/// <summary>
/// Parquet files with an image column: a binary column, or a struct with a binary 'bytes' field (the
/// Hugging Face datasets Image feature, <c>{bytes, path}</c>). Labels come from an integer 'label'
/// column, class names from Hugging Face's ClassLabel metadata when present. A path may be one file
/// or a folder of *.parquet files, read in name order. Weak labels come from a LIST column of class indices or class
/// names, <c>tags</c> unless another is named (<see cref="TagMapper"/>).
/// </summary>
public sealed class ParquetImageSource : ImageSource
{
    private static readonly string[] ImageNames = ["image", "img", "jpg", "jpeg", "png", "webp", "bytes", "image_bytes"];
    private static readonly string[] LabelNames = ["label", "labels", "cls", "class", "target", "fine_label"];
    private static readonly string[] IdNames = ["id", "key", "__key__", "image_id", "uid"];

    private readonly List<string> _files;
    private readonly string? _imageColumn;
    private readonly string? _labelColumn;
    private readonly string? _tagsColumn;
    private IReadOnlyList<string> _classNames;
    private readonly bool _namesGiven;

    public ParquetImageSource(string path, IReadOnlyList<string>? classNames = null, string? imageColumn = null, string? labelColumn = null, string? tagsColumn = null)
    {
        if (Directory.Exists(path))
        {
            _files = Directory.EnumerateFiles(path, "*.parquet").ToList();
            _files.Sort(StringComparer.Ordinal);
            if (_files.Count == 0) throw new StreamingException($"{path}: no .parquet files in this folder");
        }
        else
        {
            _files = [path];
        }
        _imageColumn = imageColumn;
        _labelColumn = labelColumn;
        _tagsColumn = tagsColumn;
        _classNames = classNames ?? [];
        _namesGiven = classNames is not null;
    }

    public override SourceFormat Format => SourceFormat.Parquet;
    public override IReadOnlyList<string> ClassNames => _classNames;

    /// <summary>Whether the first file has the tags column (its footer only); a named one that is missing is an error.</summary>
    public override bool HasTags => _hasTags ??= PeekTags();
    private bool? _hasTags;

    private bool PeekTags()
    {
        var reader = ParquetFileReader.OpenAsync(_files[0]).GetAwaiter().GetResult();
        try
        {
            return FindColumns(_files[0], reader).Tags is not null;
        }
        finally
        {
            reader.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    private sealed record Columns(ParquetColumn Image, ParquetColumn? Label, ParquetColumn? Id, ParquetColumn? ImagePath, ParquetColumn? Tags, bool TagsNullable);

    private Columns FindColumns(string file, ParquetFileReader reader)
    {
        var fields = reader.Columns;
        string Describe() => string.Join(", ", reader.Fields.Select(f => f.Name));
        static bool IsBinary(ParquetColumn f) => f.Type == ParquetValueType.Binary;
        static bool IsString(ParquetColumn f) => f.Type == ParquetValueType.String;
        ParquetColumn? TopLevel(string name, Func<ParquetColumn, bool> ok) =>
            fields.FirstOrDefault(f => f.Path.Count == 1 && string.Equals(f.Name, name, StringComparison.OrdinalIgnoreCase) && ok(f));
        ParquetColumn? StructChild(string parent, string child, Func<ParquetColumn, bool> ok) =>
            fields.FirstOrDefault(f => f.Path.Count == 2 && string.Equals(f.Path[0], parent, StringComparison.OrdinalIgnoreCase)
                                       && f.Path[1] == child && ok(f));

        ParquetColumn? image = null;
        ParquetColumn? imagePath = null;
        var names = _imageColumn is null ? ImageNames : [_imageColumn];
        foreach (var n in names)
        {
            image = TopLevel(n, IsBinary);
            if (image is not null) break;
            image = StructChild(n, "bytes", IsBinary);
            if (image is not null)
            {
                imagePath = StructChild(n, "path", IsString);
                break;
            }
        }
        if (image is null && _imageColumn is null)
        {
            var binaries = fields.Where(f => f.Path.Count == 1 && IsBinary(f)).ToList();
            if (binaries.Count == 1) image = binaries[0];
        }
        if (image is null)
            throw new StreamingException(_imageColumn is null
                ? $"{file}: no image column (looked for a binary column or a struct with a 'bytes' field; columns are: {Describe()}); pass --image-column"
                : $"{file}: no image column '{_imageColumn}' (a binary column or a struct with 'bytes'); columns are: {Describe()}");

        static bool IsInteger(ParquetColumn f) => f.Type is ParquetValueType.Int32 or ParquetValueType.Int64;
        ParquetColumn? label = null;
        foreach (var n in _labelColumn is null ? LabelNames : [_labelColumn])
            if ((label = TopLevel(n, IsInteger)) is not null) break;
        if (label is null && _labelColumn is not null)
            throw new StreamingException($"{file}: no integer label column '{_labelColumn}'; columns are: {Describe()}");

        ParquetColumn? id = null;
        foreach (var n in IdNames)
            if ((id = TopLevel(n, IsString)) is not null) break;

        // Tags: a LIST of integers or strings (its one leaf, below the top-level field).
        string tagsName = _tagsColumn ?? "tags";
        var tagsTop = reader.Fields.FirstOrDefault(f => string.Equals(f.Name, tagsName, StringComparison.OrdinalIgnoreCase));
        ParquetColumn? tags = tagsTop is null ? null
            : fields.FirstOrDefault(f => f.Path.Count > 1 && string.Equals(f.Path[0], tagsTop.Name, StringComparison.Ordinal) && f.MaxRepetitionLevel == 1
                && (IsInteger(f) || IsString(f)));
        // A column that happens to be called "tags" but holds no list of classes (free text, say) is not taken for weak
        // labels; one named with --tags-column must be such a list.
        if (tags is null && _tagsColumn is not null)
            throw new StreamingException($"{file}: {(tagsTop is null ? $"no tags column '{tagsName}'" : $"column '{tagsTop.Name}' is not a list of class indices or names")}; columns are: {Describe()}");
        return new Columns(image, label, id, imagePath, tags, tagsTop?.IsNullable ?? true);
    }

    private void ReadClassNames(ParquetFileReader reader)
    {
        if (_namesGiven || _classNames.Count > 0) return;
        if (!reader.Metadata.TryGetValue("huggingface", out var json)) return;
        try
        {
            using var doc = JsonDocument.Parse(json);
            if (doc.RootElement.TryGetProperty("info", out var info) && info.TryGetProperty("features", out var features))
                foreach (var feature in features.EnumerateObject())
                    if (feature.Value.ValueKind == JsonValueKind.Object && feature.Value.TryGetProperty("names", out var names) && names.ValueKind == JsonValueKind.Array)
                    {
                        _classNames = names.EnumerateArray().Select(n => n.GetString() ?? "").ToList();
                        return;
                    }
        }
        catch (JsonException)
        {
            // Metadata that does not parse only costs us the class names.
        }
    }

    public override async IAsyncEnumerable<SourceRecord> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        foreach (var file in _files)
        {
            string stem = Path.GetFileNameWithoutExtension(file);
            var reader = await ParquetFileReader.OpenAsync(file, cancellationToken: cancellationToken).ConfigureAwait(false);
            await using (reader)
            {
                var columns = FindColumns(file, reader);
                ReadClassNames(reader);
                long row = 0;
                for (int g = 0; g < reader.RowGroupCount; g++)
                {
                    int n;
                    byte[]?[] images;
                    long?[]? labels = null;
                    string?[]? ids = null, paths = null;
                    (int[]? Tags, string? Error)[]? tags = null;
                    try
                    {
                        using var rg = reader.OpenRowGroup(g);
                        if (rg.RowCount > Limits.MaxRowGroupRows || rg.RowCount < 0)
                            throw new StreamingException($"{file}: row group {g} declares {rg.RowCount:N0} rows, over the limit of {Limits.MaxRowGroupRows:N0} (limits.max_row_group_rows)");
                        n = (int)rg.RowCount;
                        images = new byte[]?[n];
                        await rg.ReadAsync(columns.Image, images.AsMemory(), cancellationToken).ConfigureAwait(false);
                        if (columns.Label is not null) labels = await ReadIntegersAsync(rg, columns.Label, n, cancellationToken).ConfigureAwait(false);
                        if (columns.Id is not null)
                        {
                            ids = new string?[n];
                            await rg.ReadAsync(columns.Id, ids.AsMemory(), cancellationToken).ConfigureAwait(false);
                        }
                        if (columns.Tags is not null) tags = await ReadTagsAsync(rg, columns.Tags, columns.TagsNullable, n, cancellationToken).ConfigureAwait(false);
                        if (columns.ImagePath is not null)
                        {
                            paths = new string?[n];
                            await rg.ReadAsync(columns.ImagePath, paths.AsMemory(), cancellationToken).ConfigureAwait(false);
                        }
                    }
                    catch (Exception e) when (e is not OperationCanceledException and not StreamingException)
                    {
                        throw new StreamingException($"{file}: corrupt row group {g} ({e.Message})", e);
                    }
                    for (int i = 0; i < n; i++, row++)
                    {
                        string id = ids?[i] is { Length: > 0 } given ? given
                            : paths?[i] is { Length: > 0 } p ? (_files.Count > 1 ? $"{stem}/{p}" : p)
                            : $"{stem}-{row:D6}";
                        string source = $"{file}#{row}";
                        long? raw = labels?[i];
                        if (raw < 0 || raw >= Limits.MaxClasses)
                        {
                            // Hugging Face writes -1 for "no label"; anything else out of range is a bad record.
                            if (raw == -1) raw = null;
                            else
                            {
                                yield return new SourceRecord(id, source, null, Error: new SourceError(Decode.QuarantineReasons.BadLabel, raw < 0 ? $"label {raw} out of range" : $"label {raw:N0} is over the limit of {Limits.MaxClasses:N0} classes (limits.max_classes)"));
                                continue;
                            }
                        }
                        if (tags?[i].Error is string bad)
                        {
                            yield return new SourceRecord(id, source, null, Error: new SourceError(Decode.QuarantineReasons.BadLabel, $"bad tags: {bad}"));
                            continue;
                        }
                        yield return images[i] is null
                            ? new SourceRecord(id, source, (int?)raw, Error: new SourceError(Decode.QuarantineReasons.Empty, "null image"))
                            : new SourceRecord(id, source, (int?)raw, images[i]) { Tags = tags?[i].Tags };
                    }
                }
            }
        }
    }

    /// <summary>Each row's tags as class indices (null where the list is null), or why they are bad.</summary>
    private async Task<(int[]? Tags, string? Error)[]> ReadTagsAsync(ParquetGroupReader rg, ParquetColumn field, bool nullable, int n, CancellationToken cancellationToken)
    {
        var result = new (int[]?, string?)[n];
        if (field.Type is ParquetValueType.Int32 or ParquetValueType.Int64)
        {
            long[]?[] lists = field.Type == ParquetValueType.Int32
                ? [.. (await rg.ReadListsAsync<int>(field, n, nullable, cancellationToken).ConfigureAwait(false)).Select(l => l?.Select(v => (long)v).ToArray())]
                : await rg.ReadListsAsync<long>(field, n, nullable, cancellationToken).ConfigureAwait(false);
            for (int i = 0; i < n; i++) result[i] = lists[i] is { } l ? TagMapper.Map(l) : (null, null);
        }
        else
        {
            var lists = await rg.ReadListsAsync<ReadOnlyMemory<char>>(field, n, nullable, cancellationToken).ConfigureAwait(false);
            for (int i = 0; i < n; i++) result[i] = lists[i] is { } l ? TagMapper.Map(l.Select(m => m.ToString())) : (null, null);
        }
        return result;
    }

    private static async Task<long?[]> ReadIntegersAsync(ParquetGroupReader rg, ParquetColumn field, int n, CancellationToken cancellationToken)
    {
        var result = new long?[n];
        if (field.Type == ParquetValueType.Int64)
        {
            await rg.ReadAsync<long>(field, result.AsMemory(), cancellationToken).ConfigureAwait(false);
            return result;
        }
        var ints = new int?[n];
        if (field.Type == ParquetValueType.Int32)
        {
            await rg.ReadAsync<int>(field, ints.AsMemory(), cancellationToken).ConfigureAwait(false);
        }
        else
        {
            throw new StreamingException($"label column '{field.Name}' has type {field.Type}; int32 or int64 is supported");
        }
        for (int i = 0; i < n; i++) result[i] = ints[i];
        return result;
    }
}
