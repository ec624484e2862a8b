using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Streaming.Core;
using Streaming.Models.Compute;

using Streaming.Core.Compute;

namespace Streaming.Engine.Pipelines;

/// <summary>One output file of a replayed stage against the record.</summary>
public sealed record ReplayCheck(string Stage, string File, string Expected, string? Actual)
{
    public bool Matches => Expected == Actual;
}

/// <summary>One metric of a replay against the record, and the tolerance it was held to (0: equal).</summary>
public sealed record MetricCheck(string Name, double Expected, double? Actual, double Tolerance, bool Relative)
{
    public bool Matches => Actual is double a && (Tolerance == 0 ? a == Expected : Math.Abs(a - Expected) <= Tolerance * (Relative ? Math.Abs(Expected) : 1));
}

/// <summary>
/// What a replay found: every output file against its recorded hash, and every metric against its recorded value.
/// <see cref="ByTolerance"/> says which decides: hashes when the replay ran on the recorded kernels, metrics within
/// tolerance when it was allowed to run on others (<c>--allow-isa-change</c>).
/// </summary>
public sealed record ReplayReport(IReadOnlyList<ReplayCheck> Files, IReadOnlyList<MetricCheck> Metrics, bool ByTolerance, string Kernels)
{
    public bool Passed => ByTolerance ? Metrics.All(m => m.Matches) : Files.All(f => f.Matches);
}

/// <summary>
/// Re-executes a recorded run from its <c>run.json</c> (the resolved manifest, not the manifest file,
/// which may have changed since), into a fresh folder with no cache, and compares every stage's output
/// files with the recorded hashes.
/// </summary>
public static class PipelineReplay
{
    /// <summary>Reads a run record and the manifest it resolved, with <paramref name="overrides"/> (<c>key=value</c>) applied on top.</summary>
    public static (PipelineManifest Manifest, RunRecord Record) LoadRecord(string runJson, IReadOnlyList<string>? overrides = null)
    {
        var record = RunRecord.Load(runJson);
        return (PipelineManifest.FromRecord(record, Path.GetFullPath(runJson), overrides), record);
    }

    /// <summary>
    /// Accuracy and precision (fractions) must come within 2 points when the kernels changed: a kernel change perturbs
    /// training as a new seed does, and the default pipeline's seeds spread its accuracies by 0.3 to 1.1 points (sd,
    /// docs/results.md). Other metrics (counts, sizes) within 2%; timings are not compared.
    /// </summary>
    public const double FractionTolerance = 0.02, CountTolerance = 0.02;

    /// <summary>
    /// Pins the kernels the record names, re-executes it and checks it. When this CPU cannot run those kernels the replay
    /// stops before any work, unless <paramref name="allowIsaChange"/>: then it runs on this CPU's own kernels and holds
    /// the metrics to <see cref="FractionTolerance"/> and <see cref="CountTolerance"/> instead of the hashes.
    /// </summary>
    public static async Task<ReplayReport> RunAsync(string runJson, string output, bool allowIsaChange = false, Action<string>? log = null,
        IProgress<StageProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        log ??= _ => { };
        var (manifest, record) = LoadRecord(runJson);
        if (Directory.Exists(Path.Combine(output, "cache")) && Directory.EnumerateFileSystemEntries(Path.Combine(output, "cache")).Any())
            throw new StreamingException($"{output}: already holds a cache; a replay starts from nothing (give a new --out)");
        bool byTolerance = false;
        if (record.Compute is { } recorded)
        {
            if (Streaming.Models.Compute.Kernels.PinLike(recorded, runJson) is string refusal)
            {
                if (!allowIsaChange) throw new StreamingException($"{refusal}; replay with --allow-isa-change to compare the metrics within tolerance instead of the hashes");
                log($"note: {refusal}; replaying on this CPU's own kernels and comparing metrics within tolerance (--allow-isa-change)");
                manifest = LoadRecord(runJson, ["compute.isa=native"]).Manifest;
                byTolerance = true;
            }
        }
        else
        {
            log($"note: {runJson} does not name the kernels it ran on (it predates the compute record); its hashes match only if they were this CPU's");
        }
        var runner = new PipelineRunner(manifest, output, log, progress);
        var replayed = await runner.RunAsync(cancellationToken).ConfigureAwait(false);
        return new ReplayReport(FileChecks(record, runner.Records), MetricChecks(record, replayed, byTolerance), byTolerance, replayed.Compute?.ToString() ?? "");
    }

    /// <summary>Every output file the record lists, against the replayed stage's hash of it (null when the replay has none).</summary>
    private static List<ReplayCheck> FileChecks(RunRecord record, IReadOnlyList<StageRecord> replayed)
    {
        var actual = replayed.ToDictionary(r => r.Name, StringComparer.Ordinal);
        var checks = new List<ReplayCheck>();
        foreach (var stage in record.Stages)
            foreach (var (file, sha) in stage.Outputs)
            {
                string? got = actual.TryGetValue(stage.Name, out var r) && r.Outputs.TryGetValue(file, out var x) ? x : null;
                checks.Add(new ReplayCheck(stage.Name, file, sha, got));
            }
        return checks;
    }

    /// <summary>
    /// Every recorded metric but the rates, against the replay's, held to the tolerance of its declared kind when the kernels
    /// changed; a metric no stage declares (a record from another engine) is held to the counts' tolerance.
    /// </summary>
    private static List<MetricCheck> MetricChecks(RunRecord record, RunRecord replayed, bool byTolerance)
    {
        var metrics = new List<MetricCheck>();
        foreach (var (name, value) in record.Metrics)
        {
            var kind = PipelineGraph.MetricOf(name)?.Kind ?? MetricKind.Count;
            if (kind == MetricKind.Rate) continue;
            double? replayedValue = replayed.Metrics.TryGetValue(name, out var v) ? v : null;
            bool fraction = kind == MetricKind.Fraction;
            metrics.Add(new MetricCheck(name, value, replayedValue, byTolerance ? (fraction ? FractionTolerance : CountTolerance) : 0, !fraction));
        }
        return metrics;
    }
}
