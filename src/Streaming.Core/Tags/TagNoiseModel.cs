namespace Streaming.Core.Tags;

/// <summary>
/// Turns true labels into hashtag-like weak labels, for the semi-weakly supervised setting of the paper (§3.3) where
/// the real tags (IG-1B's hashtags) are not at hand. The model, per image of true class y, all draws seeded by
/// (<see cref="Seed"/>, image id), so an image's tags do not depend on the order images come in:
/// <list type="number">
/// <item>with probability <see cref="Untagged"/> the image gets no tag at all;</item>
/// <item>otherwise its true class is tagged with probability <c>Recall(y) = HeadRecall / (1 + rank(y))^ZipfExponent</c>,
/// where <c>rank</c> orders the classes by a seeded permutation: head classes are tagged often, tail classes rarely, as
/// hashtags follow a Zipf curve;</item>
/// <item>and it gets <c>k</c> wrong tags, <c>k</c> drawn from a Poisson law of mean <see cref="WrongTagsMean"/>: each, with
/// probability <see cref="Confusable"/>, a class drawn from row y of <see cref="Confusion"/> (its off-diagonal, the
/// classes y is mistaken for), else a class drawn uniformly among the others.</item>
/// </list>
/// The defaults give a tag precision of about 65% and a recall of about 50% on 10 balanced classes, and leave about 40% of
/// the images with no tag (10% by the first draw, the rest because neither their class nor a wrong tag was drawn), as
/// many photos carry no relevant hashtag (TagNoiseTests); <see cref="Measure"/> says what they gave on the data at hand.
/// </summary>
public sealed record TagNoiseModel
{
    public ulong Seed { get; init; }
    public double Untagged { get; init; } = 0.1;
    public double HeadRecall { get; init; } = 0.98;
    public double ZipfExponent { get; init; } = 0.4;
    public double WrongTagsMean { get; init; } = 0.27;
    public double Confusable { get; init; } = 0.8;
    /// <summary>Row y, column c: how often true class y is taken for c (a teacher's confusion matrix on a test set); null: uniform.</summary>
    public IReadOnlyList<IReadOnlyList<double>>? Confusion { get; init; }

    /// <summary>The chance that an image of class <paramref name="y"/> (of <paramref name="classes"/>) has its true class among its tags, given it has tags.</summary>
    public double Recall(int y, int classes)
    {
        var rank = Ranks(classes);
        return Math.Min(1, HeadRecall / Math.Pow(1 + rank[y], ZipfExponent));
    }

    /// <summary>The classes' places on the Zipf curve: a seeded permutation of 0..classes-1.</summary>
    public int[] Ranks(int classes)
    {
        var order = Enumerable.Range(0, classes).ToArray();
        var rng = new SplitMix64(StableHash.Mix(Seed ^ 0x7A6E5D4C3B2A1908UL));
        for (int i = classes - 1; i > 0; i--)
        {
            int j = rng.NextInt(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        var rank = new int[classes];
        for (int r = 0; r < classes; r++) rank[order[r]] = r;
        return rank;
    }

    /// <summary>The tags of one image (sorted, distinct; empty when untagged).</summary>
    public int[] Tags(string id, int y, int classes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(classes, 2);
        if ((uint)y >= (uint)classes) throw new ArgumentOutOfRangeException(nameof(y), $"class {y} outside 0..{classes - 1}");
        var rng = new SplitMix64(StableHash.Of(id, Seed));
        if (rng.NextDouble() < Untagged) return [];
        var tags = new SortedSet<int>();
        if (rng.NextDouble() < Recall(y, classes)) tags.Add(y);
        int wrong = Poisson(ref rng, WrongTagsMean);
        for (int i = 0; i < wrong; i++) tags.Add(WrongTag(ref rng, y, classes));
        return [.. tags];
    }

    private int WrongTag(ref SplitMix64 rng, int y, int classes)
    {
        if (Confusion is { } m && rng.NextDouble() < Confusable)
        {
            var row = m[y];
            double total = 0;
            for (int c = 0; c < classes; c++) if (c != y) total += Math.Max(0, row[c]);
            if (total > 0)
            {
                double pick = rng.NextDouble() * total;
                for (int c = 0; c < classes; c++)
                {
                    if (c == y) continue;
                    pick -= Math.Max(0, row[c]);
                    if (pick < 0) return c;
                }
            }
        }
        int other = rng.NextInt(classes - 1);
        return other >= y ? other + 1 : other;
    }

    /// <summary>Knuth's method; fine for the small means used here.</summary>
    private static int Poisson(ref SplitMix64 rng, double mean)
    {
        if (mean <= 0) return 0;
        double limit = Math.Exp(-mean), p = 1;
        int k = 0;
        while (true)
        {
            p *= rng.NextDouble();
            if (p <= limit) return k;
            k++;
        }
    }

    /// <summary>
    /// Precision (the share of tags that are the image's true class) and recall (the share of images whose true class
    /// is among their tags, untagged images included) of this model's tags of <paramref name="images"/>.
    /// </summary>
    public TagQuality Measure(IEnumerable<(string Id, int Label)> images, int classes) =>
        TagQuality.Of(images.Select(i => ((int?)i.Label, Tags(i.Id, i.Label, classes))), classes);
}

/// <summary>What the tags of a set came out as: counts, and precision and recall against true labels (NaN with none).</summary>
public sealed record TagQuality(long Images, long Tagged, long Tags, long CorrectTags, double Precision, double Recall, double[] RecallByClass)
{
    /// <summary>Precision and recall of <paramref name="images"/>' tags against their true labels (null: not known).</summary>
    public static TagQuality Of(IEnumerable<(int? Label, int[] Tags)> images, int classes)
    {
        long n = 0, tagged = 0, tags = 0, measured = 0, measuredTags = 0, correct = 0;
        var perClass = new long[classes];
        var hits = new long[classes];
        foreach (var (label, t) in images)
        {
            n++;
            if (t.Length > 0) tagged++;
            tags += t.Length;
            if (label is not int y || (uint)y >= (uint)classes) continue;
            measured++;
            measuredTags += t.Length;
            perClass[y]++;
            if (Array.IndexOf(t, y) >= 0)
            {
                correct++;
                hits[y]++;
            }
        }
        return new TagQuality(n, tagged, tags, correct, measured == 0 ? double.NaN : measuredTags == 0 ? 0 : (double)correct / measuredTags,
            measured == 0 ? double.NaN : (double)correct / measured,
            [.. Enumerable.Range(0, classes).Select(c => perClass[c] == 0 ? double.NaN : (double)hits[c] / perClass[c])]);
    }
}
