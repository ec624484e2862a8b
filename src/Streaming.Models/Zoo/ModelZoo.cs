using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;

namespace Streaming.Models.Zoo;

/// <summary>
/// Builds a model by the name users know: resnet18, resnet34, resnet50, resnext50_32x4d,
/// resnext101_32x4d, resnext101_32x8d, resnext101_32x16d (torchvision's shapes and names, for
/// 224 px inputs), resnet20 / resnet32 / resnet56 (CIFAR-style, 28-64 px) and cnn-small. A suffix
/// ":wN" sets the width multiplier of the small models, e.g. "resnet20:w2".
/// </summary>
public static class ModelZoo
{
    public static readonly IReadOnlyList<string> Names =
    [
        "resnet18", "resnet34", "resnet50", "resnext50_32x4d", "resnext101_32x4d", "resnext101_32x8d", "resnext101_32x16d",
        "resnet20", "resnet32", "resnet56", "cnn-small", "cnn-plain",
    ];

    /// <summary>
    /// Changes whenever the zoo computes a model differently (same weights, other bits out): part of every cached
    /// training stage's key. 2: 1x1 convolutions as matrix products (<see cref="PointwiseConv2d"/>).
    /// </summary>
    public const int Revision = 2;

    /// <summary>Whether the architecture is one of torchvision's (its weights load with torchvision's key names).</summary>
    public static bool IsTorchvision(string name) => ParseName(name).Base is "resnet18" or "resnet34" or "resnet50" or "resnext50_32x4d" or "resnext101_32x4d" or "resnext101_32x8d";

    /// <summary>
    /// Serializes model creation: initialisation draws from libtorch's one global generator, so a seeded
    /// creation must not interleave with another thread's (two trainings in one process, as in the tests
    /// or a pipeline next to a daemon); otherwise the same seed would give different weights.
    /// </summary>
    private static readonly Lock InitLock = new();

    /// <summary>Creates a model; with <paramref name="seed"/>, its initial weights are a function of the seed alone.</summary>
    public static nn.Module<Tensor, Tensor> Create(string name, long numClasses, long inChannels, long? seed)
    {
        lock (InitLock)
        {
            if (seed is long s) torch.manual_seed(s);
            return Create(name, numClasses, inChannels);
        }
    }

    public static nn.Module<Tensor, Tensor> Create(string name, long numClasses, long inChannels)
    {
        lock (InitLock) return CreateUnlocked(name, numClasses, inChannels);
    }

    private static nn.Module<Tensor, Tensor> CreateUnlocked(string name, long numClasses, long inChannels)
    {
        var (baseName, width) = ParseName(name);
        if (width != 1 && baseName is not ("resnet20" or "resnet32" or "resnet56" or "cnn-small"))
            throw new ArgumentException($"{name}: a width multiplier applies only to resnet20/32/56 and cnn-small");
        return baseName switch
        {
            "resnet18" => ResNet.ResNet18(numClasses, inChannels),
            "resnet34" => ResNet.ResNet34(numClasses, inChannels),
            "resnet50" => ResNet.ResNet50(numClasses, inChannels),
            "resnext50_32x4d" => ResNet.ResNeXt50_32x4d(numClasses, inChannels),
            "resnext101_32x4d" => ResNet.ResNeXt101_32x4d(numClasses, inChannels),
            "resnext101_32x8d" => ResNet.ResNeXt101_32x8d(numClasses, inChannels),
            "resnext101_32x16d" => ResNet.ResNeXt101_32x16d(numClasses, inChannels),
            "resnet20" => new CifarResNet(name, 20, numClasses, inChannels, width),
            "resnet32" => new CifarResNet(name, 32, numClasses, inChannels, width),
            "resnet56" => new CifarResNet(name, 56, numClasses, inChannels, width),
            "cnn-small" => new CnnSmall(numClasses, inChannels, width),
            "cnn-plain" => new CnnPlain(numClasses, inChannels),
            _ => throw new ArgumentException($"unknown architecture '{name}'; known: {string.Join(", ", Names)}"),
        };
    }

    /// <summary>The input size a model family expects by default (224 for the ImageNet models, the data's own size otherwise).</summary>
    public static int? NativeInputSize(string name) => IsTorchvision(name) || ParseName(name).Base == "resnext101_32x16d" ? 224 : null;

    private static (string Base, int Width) ParseName(string name)
    {
        name = name.Trim().ToLowerInvariant();
        int colon = name.IndexOf(':');
        if (colon < 0) return (name, 1);
        string suffix = name[(colon + 1)..];
        if (!suffix.StartsWith('w') || !int.TryParse(suffix[1..], NumberStyles.None, CultureInfo.InvariantCulture, out int w) || w < 1)
            throw new ArgumentException($"{name}: the suffix must be :wN with N >= 1 (for example resnet20:w2)");
        return (name[..colon], w);
    }
}
