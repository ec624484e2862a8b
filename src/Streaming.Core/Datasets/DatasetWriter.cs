using System.Text.Json;
using Streaming.Core.Shards;
using Streaming.Core.Decode;

namespace Streaming.Core.Datasets;

/// <summary>
/// Builds a dataset folder: shards of at most <see cref="DatasetWriterOptions.ShardSize"/> rows, a
/// quarantine list and <c>dataset.json</c>. Everything is written into a temporary sibling folder that
/// is renamed into place by <see cref="CompleteAsync"/>; a run that fails or is killed leaves no
/// half-written dataset under the final name. Not thread-safe: one writer task feeds it, in order.
/// </summary>
public sealed class DatasetWriter : IAsyncDisposable
{
    public const string QuarantineFileName = "quarantine.jsonl";

    private readonly string _finalPath;
    private readonly DatasetWriterOptions _options;
    private readonly HashSet<string> _ids = new(StringComparer.Ordinal);
    private readonly List<ShardEntry> _shards = new();
    private readonly List<long> _classCounts = new();
    private readonly SortedDictionary<string, long> _reasons = new(StringComparer.Ordinal);
    private ImageShardWriter? _current;
    private string? _currentName;
    private StreamWriter? _quarantine;
    private long _labeled, _unlabeled, _quarantined, _tagged;

    /// <summary>The writer's own bound on labels (sources check their tighter <c>limits.max_classes</c> first).</summary>
    public const int MaxClasses = 100_000_000;
    private bool _done;

    public DatasetWriter(string path, DatasetWriterOptions? options = null)
    {
        _options = options ?? new DatasetWriterOptions();
        _finalPath = Path.GetFullPath(path);
        if (File.Exists(_finalPath)) throw new StreamingException($"{path}: output exists and is a file");
        if (Directory.Exists(_finalPath) && !_options.Overwrite && Directory.EnumerateFileSystemEntries(_finalPath).Any())
            throw new StreamingException($"{path}: output folder exists and is not empty (pass --overwrite to replace it)");
        string parent = Path.GetDirectoryName(_finalPath) ?? ".";
        Directory.CreateDirectory(parent);
        TempPath = Path.Combine(parent, $".{Path.GetFileName(_finalPath)}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(TempPath);
    }

    /// <summary>The folder being written; it becomes the final folder on completion.</summary>
    public string TempPath { get; }

    public long Rows => _labeled + _unlabeled;
    public long Quarantined => _quarantined;

    /// <summary>Appends a record. Ids must be unique; a repeated id is an error of the caller.</summary>
    public async Task AddAsync(ImageRecord record, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_done, this);
        if (!_ids.Add(record.Id)) throw new InvalidOperationException($"duplicate id '{record.Id}'");
        if (_current is null)
        {
            _currentName = $"shard-{_shards.Count:D5}.parquet";
            _current = await ImageShardWriter.CreateAsync(Path.Combine(TempPath, _currentName), _options.Compression, _options.RowGroupSize, cancellationToken, _options.Tags).ConfigureAwait(false);
        }
        await _current.WriteAsync(record, cancellationToken).ConfigureAwait(false);
        if (record.Tags is { Length: > 0 }) _tagged++;
        if (record.Label is int label)
        {
            if (label < 0) throw new InvalidOperationException($"negative label {label} for '{record.Id}'");
            if (label >= MaxClasses) throw new StreamingException($"label {label:N0} of '{record.Id}' is over the limit of {MaxClasses:N0} classes");
            while (_classCounts.Count <= label) _classCounts.Add(0);
            _classCounts[label]++;
            _labeled++;
        }
        else
        {
            _unlabeled++;
        }
        if (_current.Rows >= _options.ShardSize || _current.ImageBytes >= _options.MaxShardBytes)
            await CloseShardAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Whether an id was already added (sources use it to make ids unique).</summary>
    public bool ContainsId(string id) => _ids.Contains(id);

    /// <summary>Records a skipped input with its reason.</summary>
    public void Quarantine(QuarantineEntry entry)
    {
        ObjectDisposedException.ThrowIf(_done, this);
        _quarantine ??= new StreamWriter(Path.Combine(TempPath, QuarantineFileName), append: false, new System.Text.UTF8Encoding(false));
        _quarantine.Write(JsonSerializer.Serialize(entry));
        _quarantine.Write('\n');
        _quarantined++;
        _reasons[entry.Reason] = _reasons.GetValueOrDefault(entry.Reason) + 1;
    }

    private async Task CloseShardAsync(CancellationToken cancellationToken)
    {
        if (_current is null) return;
        long rows = _current.Rows;
        await _current.CompleteAsync(cancellationToken).ConfigureAwait(false);
        await _current.DisposeAsync().ConfigureAwait(false);
        string path = Path.Combine(TempPath, _currentName!);
        _shards.Add(new ShardEntry(_currentName!, rows, new FileInfo(path).Length, Hashing.Sha256File(path)));
        _current = null;
    }

    /// <summary>Closes the last shard, writes the manifest and renames the folder into place.</summary>
    public async Task<DatasetManifest> CompleteAsync(DatasetManifest header, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_done, this);
        await CloseShardAsync(cancellationToken).ConfigureAwait(false);
        if (_quarantine is not null) await _quarantine.DisposeAsync().ConfigureAwait(false);
        _quarantine = null;

        var classes = header.Classes.ToList();
        if (_classCounts.Count > classes.Count)
        {
            if (classes.Count > 0)
                throw new StreamingException($"label {_classCounts.Count - 1} is out of range for the {classes.Count} class names given");
            for (int i = 0; i < _classCounts.Count; i++) classes.Add(i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        var counts = classes.Select((_, i) => i < _classCounts.Count ? _classCounts[i] : 0L).ToList();
        var manifest = header with
        {
            Format = DatasetManifest.CurrentFormat,
            Name = header.Name.Length > 0 ? header.Name : Path.GetFileName(_finalPath),
            Rows = Rows,
            Labeled = _labeled,
            Unlabeled = _unlabeled,
            Classes = classes,
            ClassCounts = counts,
            Shards = _shards.ToList(),
            ShardSize = _options.ShardSize,
            Compression = _options.Compression.ToString().ToLowerInvariant(),
            Quarantined = _quarantined,
            QuarantineFile = _quarantined > 0 ? QuarantineFileName : null,
            QuarantineReasons = new SortedDictionary<string, long>(_reasons, StringComparer.Ordinal),
            Tagged = _options.Tags ? _tagged : null,
        };
        manifest.Save(TempPath);

        if (Directory.Exists(_finalPath))
        {
            // Only reached with Overwrite (or an empty folder): move the old one aside first, so a crash never loses both.
            string old = TempPath + ".old";
            Directory.Move(_finalPath, old);
            AtomicFile.CommitDirectory(TempPath, _finalPath);
            Directory.Delete(old, recursive: true);
        }
        else
        {
            AtomicFile.CommitDirectory(TempPath, _finalPath);
        }
        _done = true;
        return manifest;
    }

    /// <summary>Abandons an unfinished dataset: the temporary folder is removed.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_done) return;
        _done = true;
        if (_current is not null) await _current.DisposeAsync().ConfigureAwait(false);
        if (_quarantine is not null) await _quarantine.DisposeAsync().ConfigureAwait(false);
        try { Directory.Delete(TempPath, recursive: true); } catch (DirectoryNotFoundException) { }
    }
}
