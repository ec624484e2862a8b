using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Streaming.Core;

namespace Streaming.Models.Pipelines;

/// <summary>One output file of a replayed stage against the record.</summary>
public sealed record ReplayCheck(string Stage, string File, string Expected, string? Actual)
{
    public bool Matches => Expected == Actual;
}

/// <summary>
/// Re-executes a recorded run from its <c>run.json</c> (the resolved manifest, not the manifest file,
/// which may have changed since), into a fresh folder with no cache, and compares every stage's output
/// files with the recorded hashes.
/// </summary>
public static class PipelineReplay
{
    public static (PipelineManifest Manifest, JsonObject Record) LoadRecord(string runJson)
    {
        if (!File.Exists(runJson)) throw new StreamingException($"{runJson}: not found");
        JsonObject record;
        try
        {
            record = JsonNode.Parse(File.ReadAllText(runJson))?.AsObject() ?? throw new StreamingException($"{runJson}: empty");
        }
        catch (JsonException e)
        {
            throw new StreamingException($"{runJson}: not a run record ({e.Message})", e);
        }
        if (record["resolved"] is not JsonObject resolved || record["stages"] is not JsonArray)
            throw new StreamingException($"{runJson}: not a run record (no 'resolved' manifest or 'stages')");
        var sets = resolved.Select(kv => $"{kv.Key}={Scalar(kv.Value)}").ToList();
        return (PipelineManifest.Parse("", Path.GetFullPath(runJson), sets), record);
    }

    private static string Scalar(JsonNode? node) => node switch
    {
        JsonValue v when v.TryGetValue(out double d) => d.ToString("R", CultureInfo.InvariantCulture),
        JsonValue v => v.ToString(),
        _ => throw new StreamingException("run.json: a resolved manifest value is not a scalar"),
    };

    public static async Task<IReadOnlyList<ReplayCheck>> RunAsync(string runJson, string output, Action<string>? log = null, IProgress<string>? status = null,
        CancellationToken cancellationToken = default)
    {
        var (manifest, record) = LoadRecord(runJson);
        if (Directory.Exists(Path.Combine(output, "cache")) && Directory.EnumerateFileSystemEntries(Path.Combine(output, "cache")).Any())
            throw new StreamingException($"{output}: already holds a cache; a replay starts from nothing (give a new --out)");
        var runner = new PipelineRunner(manifest, output, log, status);
        await runner.RunAsync(cancellationToken).ConfigureAwait(false);
        var actual = runner.Records.ToDictionary(r => r.Name, StringComparer.Ordinal);
        var checks = new List<ReplayCheck>();
        foreach (var stage in record["stages"]!.AsArray())
        {
            string name = stage!["name"]!.GetValue<string>();
            foreach (var (file, sha) in stage["outputs"]!.AsObject())
            {
                string? got = actual.TryGetValue(name, out var r) && r.Outputs.TryGetValue(file, out var s) ? s : null;
                checks.Add(new ReplayCheck(name, file, sha!.GetValue<string>(), got));
            }
        }
        return checks;
    }
}
