using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Streaming.Core.Dataflow;

namespace Streaming.Engine.Scoring;

/// <summary>
/// OpenTelemetry through System.Diagnostics: an <see cref="ActivitySource"/> with a span per shard scored, and a
/// <see cref="Meter"/> with each live scoring graph's per-stage counters. Both are named <c>Streaming.Scoring</c>;
/// add that name to an OpenTelemetry SDK's tracer and meter providers (or any ActivityListener / MeterListener) to
/// send them to a collector. Off by default: with no listener, StartActivity returns null and the observable
/// instruments are never read, so they cost nothing.
/// </summary>
public static class ScoringTelemetry
{
    public const string Name = "Streaming.Scoring";
    public static readonly ActivitySource Source = new(Name, typeof(ScoringTelemetry).Assembly.GetName().Version?.ToString());
    public static readonly Meter Meter = new(Name, typeof(ScoringTelemetry).Assembly.GetName().Version?.ToString());

    private static readonly ConcurrentDictionary<ScoreGraph, byte> Graphs = new();

    static ScoringTelemetry()
    {
        Meter.CreateObservableCounter("streaming.stage.items", () => Observe(s => s.ItemsOut), "{item}", "Items out of each scoring stage");
        Meter.CreateObservableCounter("streaming.stage.busy", () => Observe(s => s.BusySeconds), "s", "Time each stage spent on its own work, summed over its workers");
        Meter.CreateObservableCounter("streaming.stage.blocked", () => Observe(s => s.BlockedSeconds), "s", "Time each stage waited on a full next stage");
        Meter.CreateObservableCounter("streaming.stage.starved", () => Observe(s => s.StarvedSeconds), "s", "Time each stage waited for input");
        Meter.CreateObservableGauge("streaming.stage.queue", () => Observe(s => (long)s.Queue), "{item}", "Items queued at each stage's input");
    }

    private static IEnumerable<Measurement<T>> Observe<T>(Func<StageSnapshot, T> value) where T : struct
    {
        int graph = 0;
        foreach (var g in Graphs.Keys)
        {
            graph++;
            foreach (var stage in g.Stages)
                yield return new Measurement<T>(value(stage.Snapshot()), new KeyValuePair<string, object?>("stage", stage.Name), new KeyValuePair<string, object?>("graph", graph));
        }
    }

    internal static void Register(ScoreGraph graph) => Graphs[graph] = 0;
    internal static void Unregister(ScoreGraph graph) => Graphs.TryRemove(graph, out _);
}
