namespace Streaming.Core.Selection;

/// <summary>
/// An offer that beat its class's threshold, waiting in the <see cref="Selector"/>'s stage: its ranking score,
/// its probability, and its id's hash and place (UTF-8 bytes) in the stage's id buffer.
/// </summary>
internal readonly record struct StagedCandidate(float Score, float Prob, ulong Hash, int IdOffset, int IdLength);
