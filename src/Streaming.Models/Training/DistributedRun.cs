using System.Globalization;
using Streaming.Core;
using Streaming.Core.Datasets;
using Streaming.Models.Compute;

namespace Streaming.Models.Training;

/// <summary>How a run was spread over processes, as config.json records it.</summary>
/// <param name="Ranks">N, the processes that trained together.</param>
/// <param name="BatchPerRank">B/N: the images each rank trains on a step, and normalizes over.</param>
/// <param name="BatchNorm">Where BatchNorm's statistics come from: "per rank", the paper's recipe.</param>
/// <param name="Hosts">The hosts, rank by rank.</param>
public sealed record DistributedInfo(int Ranks, int BatchPerRank, string BatchNorm, IReadOnlyList<string> Hosts);

/// <summary>What a run over several processes adds to one over one: the record, the checks, and what every rank must agree on.</summary>
internal static class DistributedRun
{
    /// <summary>The processes a run was made with (1 without a record).</summary>
    public static int Ranks(TrainOptions o) => o.Distributed?.Ranks ?? 1;

    /// <summary>
    /// <paramref name="o"/> as this group runs it: the world recorded, and the global batch checked against it (every rank
    /// checks the same, so every rank refuses alike; rank 0 says why).
    /// </summary>
    public static TrainOptions Describe(TrainOptions o, IProcessGroup group, TrainingData data)
    {
        o = o with { Engine = BuildInfo.Current };
        if (group.Size == 1) return o;
        bool root = group.Rank == 0;
        if (o.BatchSize % group.Size != 0)
            throw new GroupRefusal($"--batch {o.BatchSize}: the global batch must split evenly over the {group.Size} ranks (B/N images each); use a multiple of {group.Size}", root);
        if (data.Manifest.Labeled < o.BatchSize)
            throw new GroupRefusal(string.Create(CultureInfo.InvariantCulture, $"{data.Folder}: {data.Manifest.Labeled:N0} images are fewer than one global batch ({o.BatchSize}); lower --batch"), root);
        var hosts = group.Gather(Environment.MachineName);
        return o with { Distributed = new DistributedInfo(group.Size, o.BatchSize / group.Size, "per rank", hosts) };
    }

    /// <summary>
    /// What must be the same on every rank: the run's settings (the data by its manifest's hash, not its path, which may
    /// differ between machines), the world, the engine and the kernels.
    /// </summary>
    public static SortedDictionary<string, string> Identity(TrainOptions o, TrainingData data)
    {
        var identity = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["the data (dataset.json's SHA-256)"] = Hashing.Sha256File(Path.Combine(data.Folder, DatasetManifest.FileName)),
            ["the ranks"] = Ranks(o).ToString(CultureInfo.InvariantCulture),
            ["the engine"] = $"{BuildInfo.Current.Commit}{(BuildInfo.Current.Dirty ? " (dirty)" : "")}",
            ["the kernels"] = Kernels.KernelKey(o.Compute!),
        };
        // Each setting on its own, so that a refusal names the one that differs.
        using var settings = System.Text.Json.JsonDocument.Parse(ResumePoint.SettingsJson(o with { Data = "" }));
        foreach (var p in settings.RootElement.EnumerateObject().Where(p => p.Name != nameof(TrainOptions.Data))) identity[p.Name] = p.Value.GetRawText();
        identity[nameof(TrainOptions.FreezeBackbone)] = o.FreezeBackbone ? "true" : "false";
        return identity;
    }
}
