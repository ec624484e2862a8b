namespace Streaming.Core.Selection;

/// <summary>One image's top-P' classes and their probabilities, highest first.</summary>
public sealed record ScoreRow(string Id, int[] Classes, float[] Probs);
