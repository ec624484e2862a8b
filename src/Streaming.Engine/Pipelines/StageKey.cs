using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Streaming.Engine.Pipelines;

/// <summary>
/// A stage's content address: the SHA-256 (first 16 hex digits) of <c>{stage, version, parameters, inputs}</c> as JSON,
/// where inputs are the output hashes of the stages it reads, by name. The cache folder is <c>NAME-KEY</c>, and run.json
/// records the key, so this shape must never change: every cache and every record's keys would be orphaned.
/// </summary>
internal static class StageKey
{
    /// <summary>The version every key has had so far.</summary>
    public const int Version = 1;

    /// <summary>The output hashes of <paramref name="stage"/>'s inputs under <paramref name="spec"/>, by stage name.</summary>
    public static SortedDictionary<string, string> Inputs(PipelineStage stage, PipelineSpec spec, Func<PipelineStage, string> outputSha256)
    {
        var inputs = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var input in stage.Inputs(spec)) inputs[input.Name] = outputSha256(input);
        return inputs;
    }

    /// <summary>The key of a stage with these parameters and inputs.</summary>
    public static string Of(string stage, SortedDictionary<string, object> parameters, SortedDictionary<string, string> inputs)
    {
        string identity = JsonSerializer.Serialize(new { stage, version = Version, parameters, inputs });
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(identity)))[..16];
    }
}
