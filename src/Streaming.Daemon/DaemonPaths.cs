namespace Streaming.Daemon;

/// <summary>The folders of a daemon's state folder.</summary>
internal sealed record DaemonPaths(string State)
{
    public string Scores => Path.Combine(State, "scores");
    public string Heaps => Path.Combine(State, "heaps");
    public string Snapshots => Path.Combine(State, "snapshots");
    public string Ingested => Path.Combine(State, "ingested");
    public string Processed => Path.Combine(State, "processed");
    public string Quarantine => Path.Combine(State, "quarantine");

    public IEnumerable<string> All => [Scores, Heaps, Snapshots, Ingested, Processed, Quarantine];
}
