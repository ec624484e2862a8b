using System.Text;
using Streaming.Core;
using Streaming.Core.Datasets;
using Streaming.Core.Selection;

namespace Streaming.Engine.Scoring;

/// <summary>
/// The closing step of a scoring, written once for every host that has one (<c>score</c>, and a cluster's submitter):
/// <c>scoring.json</c>, the quarantine list (the shards' own lists, merged in shard order) and, with a selector,
/// <c>selection/</c>.
/// </summary>
public static class ScoringOutputs
{
    /// <summary>The folder D-hat goes to, inside a scoring's output.</summary>
    public const string SelectionFolder = "selection";

    /// <summary>scoring.json for a scoring on <paramref name="setup"/>'s teacher and kernels.</summary>
    public static ScoringManifest Manifest(ScoringSetup setup, string dataset, IReadOnlyList<ScoredShard> shards, IReadOnlyList<FailedShard> failed) => new()
    {
        Teacher = Path.GetFullPath(setup.TeacherFile),
        TeacherSha256 = Hashing.Sha256File(setup.TeacherFile),
        Dataset = Path.GetFullPath(dataset),
        DatasetManifestSha256 = Hashing.Sha256File(Path.Combine(dataset, DatasetManifest.FileName)),
        TopP = setup.TopP,
        Batch = setup.Spec.Batch,
        Classes = setup.Classes,
        Shards = shards,
        FailedShards = failed,
        Compute = setup.Compute,
    };

    /// <summary>Writes the three outputs into <paramref name="output"/>; returns D-hat's manifest, or null without a selector.</summary>
    public static async Task<SelectionManifest?> WriteAsync(string output, ScoringManifest manifest, Selector? selector, CancellationToken cancellationToken = default)
    {
        await manifest.SaveAsync(output, cancellationToken).ConfigureAwait(false);
        await AtomicFile.WriteAsync(Path.Combine(output, DatasetWriter.QuarantineFileName), async stream =>
        {
            await using var text = new StreamWriter(stream, new UTF8Encoding(false), 1 << 16, leaveOpen: true);
            foreach (var line in manifest.Shards.Select(e => Path.Combine(output, e.File) + ".quarantine.jsonl").Where(File.Exists).SelectMany(File.ReadLines))
                await text.WriteLineAsync(line).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);
        if (selector is null) return null;
        return await SelectionWriter.WriteAsync(Path.Combine(output, SelectionFolder), selector, new SelectionManifest
        {
            Classes = manifest.Classes,
            Dataset = manifest.Dataset,
            ScoreShards = manifest.Shards.Select(e => new ScoreShardEntry(e.File, e.Rows, e.Sha256)).ToList(),
        }, cancellationToken).ConfigureAwait(false);
    }
}
