namespace Streaming.Core.Reports;

/// <summary>What a selection report is drawn from.</summary>
/// <param name="SelectionDir">The selection: <c>selection.json</c> and <c>dhat.parquet</c> (from <c>streaming select</c>, or <c>selection/</c> of <c>streaming score -k</c>).</param>
/// <param name="ScoresDir">The scoring folder the selection was made from: <c>scoring.json</c> and the score shards it lists (for the K sweep).</param>
/// <param name="UnlabeledDir">The dataset that was scored (U): its images for the contact sheets and, when it came from <c>streaming split</c>, its withheld labels for precision.</param>
/// <param name="SweepK">The K values of the sweep; null for 1, 3, 10, 30, ... up to the largest K with K x classes &lt;= rows scored, plus the selection's own K.</param>
/// <param name="Title">The page title; null for one made from K, P and the balance mode.</param>
public sealed record SelectionReportInputs(string SelectionDir, string ScoresDir, string UnlabeledDir, IReadOnlyList<int>? SweepK = null, string? Title = null);
