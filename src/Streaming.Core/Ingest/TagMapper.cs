using System.Globalization;

namespace Streaming.Core.Ingest;

/// <summary>
/// A source's weak labels (hashtags) as class indices. A tag is an integer class index, or a class name (case does not
/// matter, a leading <c>#</c> is ignored). A name that is no class is dropped, as the paper keeps only the hashtags that
/// map to its label space; an index out of range, or a name when the source has no class names, makes the record bad.
/// Tags come out sorted and distinct.
/// </summary>
public sealed class TagMapper
{
    private readonly Dictionary<string, int> _byName;
    private readonly int _classes;
    private readonly int _maxClasses;

    public TagMapper(IReadOnlyList<string> classNames, int maxClasses)
    {
        _byName = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        for (int i = 0; i < classNames.Count; i++) _byName.TryAdd(classNames[i], i);
        _classes = classNames.Count;
        _maxClasses = maxClasses;
    }

    /// <summary>Splits a text of tags: one a line, or comma-separated.</summary>
    public static IEnumerable<string> SplitText(string text) =>
        text.Split([',', '\n', '\r'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>The class indices of <paramref name="tags"/>, or the reason they are bad.</summary>
    public (int[]? Tags, string? Error) Map(IEnumerable<string> tags)
    {
        var set = new SortedSet<int>();
        foreach (var raw in tags)
        {
            string t = raw.Trim();
            if (t.Length == 0) continue;
            if (int.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out int index))
            {
                if (OutOfRange(index) is string bad) return (null, bad);
                set.Add(index);
                continue;
            }
            if (_classes == 0) return (null, $"tag '{(t.Length > 40 ? t[..40] : t)}' names a class, but the source has no class names (pass --class-names)");
            if (_byName.TryGetValue(t.TrimStart('#'), out int named)) set.Add(named);
        }
        return ([.. set], null);
    }

    /// <summary>Integer tags (a Parquet list of integers): each must be a class index.</summary>
    public (int[]? Tags, string? Error) Map(IEnumerable<long> tags)
    {
        var set = new SortedSet<int>();
        foreach (long t in tags)
        {
            if (OutOfRange(t) is string bad) return (null, bad);
            set.Add((int)t);
        }
        return ([.. set], null);
    }

    private string? OutOfRange(long index) => index < 0 || index >= _maxClasses || (_classes > 0 && index >= _classes)
        ? $"tag {index} is outside the {(_classes > 0 ? _classes : _maxClasses):N0} classes" : null;
}
