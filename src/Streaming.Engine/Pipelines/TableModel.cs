namespace Streaming.Engine.Pipelines;

/// <summary>What the model column of <c>run</c>'s result table shows on a metric's row.</summary>
public enum TableModel
{
    /// <summary>Nothing.</summary>
    None,

    /// <summary>The student's architecture.</summary>
    Student,

    /// <summary>The teacher's architecture, or its file when it was imported.</summary>
    Teacher,

    /// <summary>The selection's K and P.</summary>
    KAndP,

    /// <summary>The selection's K.</summary>
    K,
}
