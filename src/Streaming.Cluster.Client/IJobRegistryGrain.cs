namespace Streaming.Cluster.Client;

/// <summary>The active jobs, for workers to find work (one grain, key <see cref="Key"/>).</summary>
[Alias("Streaming.Cluster.IJobRegistryGrain")]
public interface IJobRegistryGrain : IGrainWithStringKey
{
    public const string Key = "jobs";

    Task AddAsync(string job);

    Task RemoveAsync(string job);

    Task<IReadOnlyList<string>> ActiveAsync();

    Task<IReadOnlyList<string>> AllAsync();
}
