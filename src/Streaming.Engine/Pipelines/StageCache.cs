using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Streaming.Core;

namespace Streaming.Engine.Pipelines;

/// <summary>
/// The run folder's <c>cache/</c>: a stage's outputs live in <c>cache/NAME-KEY/</c>. A stage whose key already has a folder
/// is reused; else it runs into a temporary folder, which is renamed when its outputs are hashed and its <c>stage.json</c>
/// written, so a folder under its final name is always complete.
/// </summary>
internal sealed class StageCache(string runFolder)
{
    private const string StageFileName = "stage.json";
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>The cache folder.</summary>
    public string Dir { get; } = Path.Combine(runFolder, "cache");

    /// <summary>A stage keyed: its parameters, its inputs' output hashes, its key and its folder.</summary>
    private sealed record Keyed(PipelineStage Stage, SortedDictionary<string, object> Parameters, SortedDictionary<string, string> Inputs, string Key, string Folder);

    /// <summary>Runs <paramref name="stage"/>, or reuses its folder when its key has one; returns its record.</summary>
    public async Task<StageRecord> RunAsync(PipelineStage stage, StageRun run, KeyContext keys)
    {
        var parameters = stage.Parameters(keys);
        var inputs = StageKey.Inputs(stage, run.Spec, s => run.Record(s).OutputSha256);
        string key = StageKey.Of(stage.Name, parameters, inputs);
        var keyed = new Keyed(stage, parameters, inputs, key, Path.Combine(Dir, $"{stage.Name}-{key}"));
        run.Begin(stage);
        var record = File.Exists(Path.Combine(keyed.Folder, StageFileName)) ? Reuse(keyed, run) : await RunFreshAsync(keyed, run);
        run.Done(record, stage);
        return record;
    }

    private StageRecord Reuse(Keyed k, StageRun run)
    {
        var saved = JsonSerializer.Deserialize<StageFile>(File.ReadAllText(Path.Combine(k.Folder, StageFileName)))!;
        run.Log($"{run.Position} {k.Stage.Name}: reused {Path.GetRelativePath(runFolder, k.Folder)} (inputs and parameters unchanged)");
        run.Report(StageState.Reused, "reused");
        return new StageRecord(k.Stage.Name, k.Key, true, saved.WallSeconds, k.Folder, k.Parameters, k.Inputs, saved.Outputs, saved.OutputSha256, saved.Metrics);
    }

    private async Task<StageRecord> RunFreshAsync(Keyed k, StageRun run)
    {
        string name = k.Stage.Name;
        run.Log($"{run.Position} {name}: running ({string.Join(", ", k.Parameters.Select(kv => $"{kv.Key}={Format(kv.Value)}"))})");
        run.Report(StageState.Running);
        string temp = Path.Combine(Dir, $".{name}-{k.Key}.tmp-{Environment.ProcessId}");
        if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
        Directory.CreateDirectory(temp);
        var clock = Stopwatch.StartNew();
        var metrics = Declared(k.Stage, await k.Stage.RunAsync(run, temp));
        clock.Stop();
        var (outputs, outputSha) = Hash(k.Stage, run.Spec, temp);
        await File.WriteAllTextAsync(Path.Combine(temp, StageFileName), JsonSerializer.Serialize(
            new StageFile(name, k.Key, clock.Elapsed.TotalSeconds, outputs, outputSha, metrics), Indented), run.CancellationToken);
        if (Directory.Exists(k.Folder)) Directory.Delete(k.Folder, recursive: true);
        AtomicFile.CommitDirectory(temp, k.Folder);
        // Timings are not shown: the line is what a reader compares between runs.
        string shown = string.Join(", ", metrics.Where(kv => !IsRate(k.Stage, kv.Key)).Select(kv => $"{kv.Key} {Format(kv.Value)}"));
        run.Log($"      {name}: done in {clock.Elapsed.TotalSeconds:F1} s{(shown.Length > 0 ? "; " + shown : "")}");
        run.Report(StageState.Done, string.Create(CultureInfo.InvariantCulture, $"{clock.Elapsed.TotalSeconds:F1} s{(shown.Length > 0 ? "; " + shown : "")}"));
        return new StageRecord(name, k.Key, false, clock.Elapsed.TotalSeconds, k.Folder, k.Parameters, k.Inputs, outputs, outputSha, metrics);
    }

    /// <summary>The stage's output files' hashes, and the hash of that list (what the stages after it key on).</summary>
    private static (SortedDictionary<string, string> Outputs, string Sha256) Hash(PipelineStage stage, PipelineSpec spec, string dir)
    {
        var outputs = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var f in stage.Outputs(spec).SelectMany(o => o.In(dir))) outputs[f] = Hashing.Sha256File(Path.Combine(dir, f));
        if (outputs.Count == 0) throw new StreamingException($"stage {stage.Name}: produced no output files");
        string list = string.Concat(outputs.Select(kv => $"{kv.Key} {kv.Value}\n"));
        return (outputs, Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(list))));
    }

    /// <summary>The metrics, each checked against the stage's declarations: replay and the table read those.</summary>
    private static SortedDictionary<string, double> Declared(PipelineStage stage, MetricValues values)
    {
        foreach (var key in values.ByKey.Keys)
            if (!stage.Metrics.Any(m => m.Key == key))
                throw new InvalidOperationException($"stage {stage.Name} reported the metric '{key}', which it does not declare");
        return values.ByKey;
    }

    private static bool IsRate(PipelineStage stage, string key) => stage.Metrics.Any(m => m.Key == key && m.Kind == MetricKind.Rate);

    private static string Format(object v) => v switch
    {
        double d => d.ToString("0.####", CultureInfo.InvariantCulture),
        _ => Convert.ToString(v, CultureInfo.InvariantCulture) ?? "",
    };

    /// <summary>A cache folder's <c>stage.json</c>: what a reuse reads back.</summary>
    private sealed record StageFile(string Name, string Key, double WallSeconds, IReadOnlyDictionary<string, string> Outputs, string OutputSha256,
        IReadOnlyDictionary<string, double> Metrics);
}
