namespace Streaming.Engine.Pipelines;

/// <summary>Soft targets a training stage learns from: a folder of score shards, and how its key describes them.</summary>
internal sealed record SoftTargets(StageFolder Folder, string Described);
