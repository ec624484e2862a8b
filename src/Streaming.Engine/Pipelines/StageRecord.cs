namespace Streaming.Engine.Pipelines;

/// <summary>What one stage did: its cache key, whether it was reused, its output files' hashes, metrics and wall time.</summary>
public sealed record StageRecord(string Name, string Key, bool Reused, double WallSeconds, string Folder,
    IReadOnlyDictionary<string, object> Parameters, IReadOnlyDictionary<string, string> Inputs,
    IReadOnlyDictionary<string, string> Outputs, string OutputSha256, IReadOnlyDictionary<string, double> Metrics);
