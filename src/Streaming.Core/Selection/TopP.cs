using Streaming.Core.Options;

namespace Streaming.Core.Selection;

/// <summary>
/// The paper's "per image, keep its top-P classes" (section 3), in its two places. Scoring keeps each image's top-P'
/// classes and their probabilities, highest first, computed where the model runs (the infer stage: softmax and top-k
/// on the device), and stores them in the score shards. Selection then counts only the first P of them (P at most
/// P'): an image competes for a place in the heaps of those P classes, with each class's probability as its score.
/// Keeping P' in the shards means another P, or another K, needs no pass of the teacher.
/// </summary>
public static class TopP
{
    /// <summary>How many of a row's <paramref name="available"/> classes count for selection at <paramref name="p"/>.</summary>
    public static int Counted(int p, int available) => Math.Min(p, available);

    /// <summary>
    /// The one check that P fits in P' (<paramref name="pPrime"/>: the classes the scores keep per image, asked for or
    /// stored). Every front end and reader of scores calls it, and reports the error in its own words.
    /// </summary>
    /// <exception cref="OptionException">P is more than P' (or out of its own range).</exception>
    public static void Check(int p, int pPrime)
    {
        Knobs.P.Check(p);
        if (p > pPrime) throw new OptionException(Knobs.P, p, $"must be at most {Knobs.TopP.Key} ({pPrime}), the classes the scores keep per image");
    }
}
