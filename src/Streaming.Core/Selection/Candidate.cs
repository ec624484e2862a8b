namespace Streaming.Core.Selection;

/// <summary>
/// An image offered to a class heap: its ranking key (the class probability, or a random draw for
/// random selection), its id, and the teacher's probability for the class, which D-hat reports.
/// </summary>
public readonly record struct Candidate(float Score, string Id, float Prob)
{
    /// <summary>
    /// The ranking order: a higher score ranks first; among equal scores the smaller id (ordinal) ranks
    /// first. Returns a positive number when <paramref name="a"/> ranks above <paramref name="b"/>.
    /// </summary>
    public static int Compare(in Candidate a, in Candidate b)
    {
        int c = a.Score.CompareTo(b.Score);
        return c != 0 ? c : string.CompareOrdinal(b.Id, a.Id);
    }
}
