using System.Reflection;
using System.Text.Json.Serialization;

namespace Streaming.Core;

/// <summary>The engine's build: its version, the git commit it was built from, and whether the built sources differed from that commit.</summary>
public sealed record EngineBuild(
    [property: JsonPropertyName("version")] string Version,
    [property: JsonPropertyName("commit")] string Commit,
    [property: JsonPropertyName("dirty")] bool Dirty)
{
    public override string ToString() => $"{Commit[..Math.Min(12, Commit.Length)]}{(Dirty ? " (dirty)" : "")}";
}

/// <summary>
/// The source revision stamped at build time (<c>build/SourceStamp.targets</c>). Every record the engine writes carries
/// <see cref="Current"/>, so that a figure in the docs can be traced to the code that made it.
/// </summary>
public static class BuildInfo
{
    private static readonly Lazy<EngineBuild> s_current = new(() =>
    {
        var assembly = typeof(BuildInfo).Assembly;
        string? Meta(string key) => assembly.GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == key)?.Value;
        return new EngineBuild(assembly.GetName().Version?.ToString() ?? "0.0.0.0", Meta("StreamingCommit") is { Length: > 0 } c ? c : "unknown",
            Meta("StreamingDirty") == "true");
    });

    /// <summary>This build.</summary>
    public static EngineBuild Current => s_current.Value;
}
