namespace Streaming.Engine.Pipelines;

/// <summary>The parts of <c>run</c>'s result table, in the order they print; within one, rows follow the stages' order.</summary>
public enum TableSection
{
    /// <summary>Each model's top-1 on the test set.</summary>
    TopOne,

    /// <summary>The precision of D-hat's pseudo-labels.</summary>
    PseudoLabels,

    /// <summary>The semi-weak setting's tags and what was selected with them.</summary>
    Tags,
}
