using System.Globalization;
using Streaming.Core;
using Streaming.Models.IO;
using Streaming.Models.Zoo;
using TorchSharp;
using static TorchSharp.torch;

namespace Streaming.Models.Training;

/// <summary>
/// The model a run trains and its spec: a new one of the zoo, or <c>--init</c>'s weights (with a new classifier when
/// the class count differs); with <c>--freeze-backbone</c>, only its last layer left to train.
/// </summary>
internal static class ModelSetup
{
    /// <summary>
    /// The model on <paramref name="device"/>, in the kernels' memory format, and its spec: channels and normalization
    /// from the data (so evaluation and scoring decode the same way), or those of <c>--init</c>.
    /// </summary>
    public static async Task<(nn.Module<Tensor, Tensor> Model, ModelSpec Spec)> CreateAsync(TrainOptions o, TrainingData data, Device device,
        Action<string> log, CancellationToken cancellationToken)
    {
        var (model, spec) = o.Init is not null ? FromInit(o, data, log) : await FreshAsync(o, data, cancellationToken).ConfigureAwait(false);
        model.to(device);
        MemoryFormat.Apply(model);
        if (o.FreezeBackbone) log(FreezeBackbone(model));
        return (model, spec);
    }

    /// <summary>
    /// Training mode; with a frozen backbone, every module below the root goes back to evaluation mode, so no BatchNorm
    /// statistic moves (the head, a linear layer, computes the same in either mode).
    /// </summary>
    public static void TrainMode(nn.Module<Tensor, Tensor> model, bool freezeBackbone)
    {
        model.train();
        if (!freezeBackbone) return;
        var head = ((IFeatureModel)model).Head;
        foreach (var m in model.modules())
            if (!ReferenceEquals(m, head) && m is not IFeatureModel) m.eval();
    }

    private static async Task<(nn.Module<Tensor, Tensor>, ModelSpec)> FreshAsync(TrainOptions o, TrainingData data, CancellationToken cancellationToken)
    {
        var manifest = data.Manifest;
        int channels = data.Channels;
        var (mean, std) = await NormalizationStats.MeanStdAsync(o.Data, manifest, channels, o.ImageSize!.Value, cancellationToken).ConfigureAwait(false);
        var spec = new ModelSpec(o.Arch, manifest.Classes.Count, channels, o.ImageSize!.Value, mean, std, manifest.Classes);
        var model = ModelZoo.Create(o.Arch, spec.NumClasses, spec.InChannels, (long)(o.Seed & long.MaxValue));
        return (model, spec);
    }

    private static (nn.Module<Tensor, Tensor>, ModelSpec) FromInit(TrainOptions o, TrainingData data, Action<string> log)
    {
        var classes = data.Manifest.Classes;
        var (init, initSpec) = ModelFile.Load(o.Init!);
        if (initSpec.Arch != o.Arch) throw new StreamingException($"--init {o.Init}: is a {initSpec.Arch}, not a {o.Arch}");
        var model = initSpec.NumClasses == classes.Count ? init : WithNewClassifier(o, init, initSpec, classes.Count, log);
        return (model, initSpec with { NumClasses = classes.Count, Classes = classes, ImageSize = o.ImageSize!.Value });
    }

    /// <summary>Same body, new classifier: a new model of <paramref name="classes"/> classes takes every tensor of <paramref name="init"/> whose shape still fits.</summary>
    private static nn.Module<Tensor, Tensor> WithNewClassifier(TrainOptions o, nn.Module<Tensor, Tensor> init, ModelSpec initSpec, int classes, Action<string> log)
    {
        var model = ModelZoo.Create(o.Arch, classes, initSpec.InChannels, (long)(o.Seed & long.MaxValue));
        var source = init.state_dict();
        var fitting = model.state_dict().Where(kv => source.TryGetValue(kv.Key, out var t) && t.shape.SequenceEqual(kv.Value.shape))
            .ToDictionary(kv => kv.Key, kv => source[kv.Key]);
        using (no_grad()) foreach (var (k, t) in fitting) model.state_dict()[k].copy_(t);
        log($"--init: {initSpec.NumClasses} classes in the model, {classes} in the data: the classifier starts fresh ({model.state_dict().Count - fitting.Count} tensors)");
        init.Dispose();
        return model;
    }

    /// <summary>Only the head's weights keep requires_grad (so SGD updates nothing else); returns a line saying so.</summary>
    private static string FreezeBackbone(nn.Module<Tensor, Tensor> model)
    {
        if (model is not IFeatureModel features) throw new StreamingException("--freeze-backbone: this model has no separate last layer");
        var head = features.Head.parameters().ToHashSet(ReferenceEqualityComparer.Instance);
        long all = 0, trained = 0;
        foreach (var p in model.parameters())
        {
            all += p.numel();
            bool train = head.Contains(p);
            p.requires_grad = train;
            if (train) trained += p.numel();
        }
        return string.Create(CultureInfo.InvariantCulture, $"--freeze-backbone: training the last layer only ({trained:N0} of {all:N0} parameters); BatchNorm statistics fixed");
    }
}
