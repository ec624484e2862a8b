namespace Streaming.Core.Loading;

/// <summary>One example of an epoch: its position in the epoch's order, the encoded image and its target class.</summary>
public readonly record struct TrainingSample(long Index, string Id, byte[] Image, int Label);
