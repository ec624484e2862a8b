using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Streaming.Models.Zoo;

/// <summary>
/// A small, fast CNN for 28-64 px images: two conv-conv-pool stages (32 and 64 channels times the
/// width), adaptive average pooling to 4x4, and a two-layer classifier. No dropout, so training draws
/// no random numbers after initialisation.
/// </summary>
public sealed class CnnSmall : Module<Tensor, Tensor>, IFeatureModel
{
    private readonly Sequential features;
    private readonly Sequential classifier;

    public CnnSmall(long numClasses, long inChannels, int width = 1) : base("cnn-small")
    {
        if (width < 1) throw new ArgumentException($"width multiplier must be at least 1, got {width}");
        long a = 32L * width, b = 64L * width;
        features = Sequential(
            Conv2d(inChannels, a, 3, padding: 1, bias: false), new StableBatchNorm2d(a), ReLU(),
            Conv2d(a, a, 3, padding: 1, bias: false), new StableBatchNorm2d(a), ReLU(),
            MaxPool2d(2),
            Conv2d(a, b, 3, padding: 1, bias: false), new StableBatchNorm2d(b), ReLU(),
            Conv2d(b, b, 3, padding: 1, bias: false), new StableBatchNorm2d(b), ReLU(),
            MaxPool2d(2),
            AdaptiveAvgPool2d(new long[] { 4, 4 }));
        classifier = Sequential(Flatten(), Linear(b * 16, 256), ReLU(), Linear(256, numClasses));
        RegisterComponents();
        ZooInit.KaimingConvUnitBatchNorm(this);
    }

    public override Tensor forward(Tensor x) => classifier.forward(features.forward(x));

    /// <summary>The 256 values after the classifier's hidden layer and its ReLU (its first three modules).</summary>
    public Tensor Features(Tensor x)
    {
        x = features.forward(x);
        var layers = classifier.children().Cast<Module<Tensor, Tensor>>().ToList();
        for (int i = 0; i < layers.Count - 1; i++) x = layers[i].forward(x);
        return x;
    }

    public Linear Head => (Linear)classifier.children().Last();
}
