using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Streaming.Core;
using Streaming.Models.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace Streaming.Models.Training;

/// <summary>Where a run stands: enough, with the weights and the optimizer state, to continue it exactly.</summary>
public sealed record CheckpointState(
    [property: JsonPropertyName("step")] long Step,
    [property: JsonPropertyName("images_seen")] long ImagesSeen,
    [property: JsonPropertyName("epoch")] long Epoch,
    [property: JsonPropertyName("batch_in_epoch")] long BatchInEpoch,
    [property: JsonPropertyName("total_steps")] long TotalSteps,
    [property: JsonPropertyName("threads")] int Threads,
    [property: JsonPropertyName("config")] JsonElement Config);

/// <summary>
/// Checkpoints under <c>OUT/checkpoints/step-NNNNNNNNN/</c>: model.safetensors (weights and BatchNorm
/// statistics), optimizer.safetensors (momentum buffers) and state.json (position in the schedule and
/// in the data, the thread count, the resolved config). Each is written into a temporary folder that is
/// renamed into place, so a checkpoint either exists whole or not at all; the two newest are kept.
/// </summary>
public static class Checkpoints
{
    private const string Prefix = "step-";

    public static string Folder(string runDir) => Path.Combine(runDir, "checkpoints");

    public static void Save(string runDir, nn.Module model, ModelSpec spec, Sgd optimizer, CheckpointState state)
    {
        string root = Folder(runDir);
        Directory.CreateDirectory(root);
        string name = Prefix + state.Step.ToString("D9", CultureInfo.InvariantCulture);
        string temp = Path.Combine(root, $".{name}.tmp-{Environment.ProcessId}");
        if (Directory.Exists(temp)) Directory.Delete(temp, true);
        Directory.CreateDirectory(temp);
        ModelFile.Save(Path.Combine(temp, ModelFile.DefaultName), model, spec);
        SafeTensors.Save(Path.Combine(temp, "optimizer.safetensors"), optimizer.State);
        File.WriteAllText(Path.Combine(temp, "state.json"), JsonSerializer.Serialize(state, new JsonSerializerOptions { WriteIndented = true }));
        string final = Path.Combine(root, name);
        if (Directory.Exists(final)) Directory.Delete(final, true);
        Streaming.Core.AtomicFile.CommitDirectory(temp, final);
        foreach (var old in Complete(runDir).SkipLast(2)) Directory.Delete(old, true);
    }

    /// <summary>Completed checkpoint folders, oldest first.</summary>
    public static IReadOnlyList<string> Complete(string runDir)
    {
        string root = Folder(runDir);
        if (!Directory.Exists(root)) return [];
        return Directory.EnumerateDirectories(root, Prefix + "*")
            .Where(d => File.Exists(Path.Combine(d, "state.json")))
            .Order(StringComparer.Ordinal).ToList();
    }

    public static string? Latest(string runDir) => Complete(runDir).LastOrDefault();

    public static CheckpointState ReadState(string checkpoint)
    {
        string path = Path.Combine(checkpoint, "state.json");
        try
        {
            return JsonSerializer.Deserialize<CheckpointState>(File.ReadAllText(path)) ?? throw new JsonException("empty");
        }
        catch (JsonException e)
        {
            throw new StreamingException($"{path}: bad checkpoint state ({e.Message})", e);
        }
    }

    public static void Restore(string checkpoint, nn.Module model, Sgd optimizer, Device device)
    {
        var (weights, _) = SafeTensors.Load(Path.Combine(checkpoint, ModelFile.DefaultName));
        var (buffers, _) = SafeTensors.Load(Path.Combine(checkpoint, "optimizer.safetensors"));
        try
        {
            ModelFile.LoadState(model, weights, checkpoint);
            optimizer.LoadState(buffers.ToDictionary(kv => kv.Key, kv => kv.Value.to(device)));
        }
        finally
        {
            foreach (var t in weights.Values.Concat(buffers.Values)) t.Dispose();
        }
    }
}
