namespace Streaming.Core.Selection;

/// <summary>How D-hat's images are chosen among the candidates of each class (the paper's Table 5 variants).</summary>
public enum BalanceMode
{
    /// <summary>The paper's default: the K highest-scoring images of every class.</summary>
    Ranked,
    /// <summary>The same total (K x C), with class sizes following a Zipf law over classes ordered by how many images the teacher puts first in them; highest scores within a class.</summary>
    UnbalancedZipf,
    /// <summary>K images of every class drawn at random among those with the class in their top-P (teacher labels, no ranking).</summary>
    Random,
}
