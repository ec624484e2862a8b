using System.Text.Json.Nodes;
using Orleans;
using Orleans.Runtime;

namespace Streaming.Cluster.Client;

/// <summary>
/// What <c>cluster status</c> says, gathered once: the live silos, and every registered job with its leases and
/// workers. The same document is <c>cluster status --json</c> and the cluster dashboard's <c>/status</c>
/// (docs/json.md).
/// </summary>
public sealed record ClusterStatusReport(IReadOnlyList<SiloStatus> Silos, IReadOnlyList<JobStatus> Jobs)
{
    /// <summary>Asks the cluster through <paramref name="client"/>.</summary>
    public static async Task<ClusterStatusReport> CollectAsync(IClusterClient client)
    {
        var hosts = await client.GetGrain<IManagementGrain>(0).GetDetailedHosts(onlyActive: true).ConfigureAwait(false);
        var keys = await client.GetGrain<IJobRegistryGrain>(IJobRegistryGrain.Key).AllAsync().ConfigureAwait(false);
        var jobs = new List<JobStatus>();
        foreach (var key in keys)
            if (await client.GetGrain<IJobGrain>(key).StatusAsync().ConfigureAwait(false) is { } s) jobs.Add(s);
        return new ClusterStatusReport(hosts.Select(h => new SiloStatus(h.SiloAddress.ToString(), h.SiloName, h.HostName, h.Status.ToString(), h.StartTime)).ToList(), jobs);
    }

    /// <summary>The JSON document (docs/json.md).</summary>
    public JsonObject ToJson() => new()
    {
        ["silos"] = new JsonArray([.. Silos.Select(h => (JsonNode)new JsonObject
        {
            ["address"] = h.Address, ["name"] = h.Name, ["host"] = h.Host, ["status"] = h.Status, ["started_utc"] = h.StartedUtc,
        })]),
        ["jobs"] = new JsonArray([.. Jobs.Select(j => (JsonNode)new JsonObject
        {
            ["key"] = j.Key, ["out"] = j.Out, ["shards"] = j.Shards, ["done"] = j.Done, ["failed"] = j.Failed, ["leased"] = j.Leased, ["pending"] = j.Pending,
            ["images"] = j.Images, ["images_per_second"] = Math.Round(j.ImagesPerSecond, 1), ["finished"] = j.Finished,
            ["refusals"] = new JsonArray([.. j.Refusals.Select(r => (JsonNode)JsonValue.Create(r))]),
            ["workers"] = new JsonArray([.. j.Workers.Select(w => (JsonNode)new JsonObject
            {
                ["id"] = w.Worker, ["leased"] = w.Leased, ["shards"] = w.Shards, ["images"] = w.Images,
                ["images_per_second"] = Math.Round(w.ImagesPerSecond, 1), ["last_seen_utc"] = w.LastSeenUtc,
            })]),
        })]),
    };
}

/// <summary>One live silo, as <c>cluster status</c> lists it.</summary>
public sealed record SiloStatus(string Address, string Name, string Host, string Status, DateTime StartedUtc);
