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

    /// <summary>Checks that P fits in P' (the classes the scores keep), naming the settings as the caller calls them.</summary>
    public static void Check(int p, int pPrime, string pName = "P", string pPrimeName = "P'")
    {
        if (p < 1) throw new ArgumentException($"{pName} must be at least 1");
        if (p > pPrime) throw new ArgumentException($"{pName} ({p}) cannot exceed {pPrimeName} ({pPrime}), the classes the scores keep per image");
    }
}
