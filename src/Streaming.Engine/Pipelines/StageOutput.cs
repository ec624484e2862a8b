namespace Streaming.Engine.Pipelines;

/// <summary>
/// Files a stage hashes, relative to its folder: one named file, or the Parquet shards of a folder. Only deterministic
/// artifacts are outputs (shards, models, D-hat), never logs with timings.
/// </summary>
internal sealed record StageOutput(string? Folder, string? File)
{
    /// <summary>The <c>*.parquet</c> files of <paramref name="folder"/> (null: the stage's folder itself); none when it does not exist.</summary>
    public static StageOutput Shards(string? folder = null) => new(folder, null);

    /// <summary>One file, which must exist.</summary>
    public static StageOutput Named(string file) => new(null, file);

    /// <summary>How the architecture notes show it.</summary>
    public override string ToString() => File ?? (Folder is null ? "*.parquet" : Folder + "/*.parquet");

    /// <summary>The files it names in a stage's folder <paramref name="dir"/>, relative to it, in ordinal order.</summary>
    public IEnumerable<string> In(string dir)
    {
        if (File is not null) return [File];
        string shards = Folder is null ? dir : Path.Combine(dir, Folder);
        if (!Directory.Exists(shards)) return [];
        return Directory.GetFiles(shards, "*.parquet").Select(f => Folder is null ? Path.GetFileName(f) : Folder + "/" + Path.GetFileName(f))
            .Order(StringComparer.Ordinal);
    }
}
