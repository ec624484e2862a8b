using Streaming.Core;
using Streaming.Models.Zoo;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Streaming.Models.IO;

/// <summary>
/// Saving and loading models: safetensors with the model's spec in the header metadata (our format,
/// readable by Python's safetensors, with torchvision's key names for torchvision architectures), or a
/// PyTorch state dict (.pt / .pth, via TorchSharp.PyBridge) given the spec from outside.
/// </summary>
public static class ModelFile
{
    public const string DefaultName = "model.safetensors";

    public static void Save(string path, nn.Module model, ModelSpec spec)
    {
        var state = model.state_dict();
        SafeTensors.Save(path, state, spec.ToMetadata());
    }

    /// <summary>Resolves a path that may be a run folder (holding model.safetensors).</summary>
    public static string Resolve(string path) =>
        Directory.Exists(path) ? Path.Combine(path, DefaultName) : path;

    /// <summary>Reads the spec stored in a safetensors model file, or null for other files.</summary>
    public static ModelSpec? ReadSpec(string path)
    {
        path = Resolve(path);
        if (!path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) || !File.Exists(path)) return null;
        var (tensors, metadata) = SafeTensors.Load(path);
        foreach (var t in tensors.Values) t.Dispose();
        return ModelSpec.FromMetadata(metadata);
    }

    /// <summary>
    /// Builds the model and loads its weights. For a safetensors file made here the spec comes from the
    /// file; for a .pt state dict or a foreign safetensors file, <paramref name="spec"/> must say what it is.
    /// </summary>
    public static (nn.Module<Tensor, Tensor> Model, ModelSpec Spec) Load(string path, ModelSpec? spec = null, Device? device = null)
    {
        path = Resolve(path);
        if (!File.Exists(path)) throw new StreamingException($"{path}: model file not found");
        nn.Module<Tensor, Tensor> model;
        if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
        {
            var (tensors, metadata) = SafeTensors.Load(path);
            try
            {
                spec ??= ModelSpec.FromMetadata(metadata)
                    ?? throw new StreamingException($"{path}: has no streaming model metadata; pass --arch (and --num-classes, --in-channels, --image-size)");
                model = ModelZoo.Create(spec.Arch, spec.NumClasses, spec.InChannels);
                LoadState(model, tensors, path);
            }
            finally
            {
                foreach (var t in tensors.Values) t.Dispose();
            }
        }
        else
        {
            if (spec is null) throw new StreamingException($"{path}: a PyTorch state dict does not say its architecture; pass --arch (and --num-classes, --in-channels, --image-size)");
            PickleGuard.Check(path); // before anything unpickles it: a pickle can call any Python function it names
            model = ModelZoo.Create(spec.Arch, spec.NumClasses, spec.InChannels);
            try
            {
                model.load_py(path, strict: true);
            }
            catch (Exception e) when (e is not StreamingException)
            {
                throw new StreamingException($"{path}: could not load as a PyTorch state dict for {spec.Arch} ({e.Message})", e);
            }
        }
        if (device is not null) model.to(device);
        return (model, spec);
    }

    /// <summary>Copies tensors into the model's parameters and buffers by name; every name must match, with the same shape.</summary>
    public static void LoadState(nn.Module model, IReadOnlyDictionary<string, Tensor> tensors, string source)
    {
        var state = model.state_dict();
        var missing = state.Keys.Where(k => !tensors.ContainsKey(k)).ToList();
        var unexpected = tensors.Keys.Where(k => !state.ContainsKey(k)).ToList();
        if (missing.Count > 0 || unexpected.Count > 0)
            throw new StreamingException($"{source}: weights do not fit the architecture (missing: {Preview(missing)}; unexpected: {Preview(unexpected)})");
        using var _ = no_grad();
        foreach (var (name, target) in state)
        {
            var t = tensors[name];
            if (!t.shape.SequenceEqual(target.shape))
                throw new StreamingException($"{source}: '{name}' has shape [{string.Join(",", t.shape)}], the architecture wants [{string.Join(",", target.shape)}]");
            target.copy_(t.to(target.dtype));
        }
    }

    private static string Preview(List<string> names) =>
        names.Count == 0 ? "none" : string.Join(", ", names.Take(5)) + (names.Count > 5 ? $" and {names.Count - 5} more" : "");
}
