using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Streaming.Models.Zoo;

/// <summary>
/// <see cref="CnnSmall"/> without BatchNorm (its convolutions carry biases instead): a model whose step does not depend
/// on how a batch is split, so that data-parallel training over N ranks computes what one process computes, up to
/// rounding. Its use is checking that (with BatchNorm, each rank normalizes over its own B/N images, by design).
/// </summary>
public sealed class CnnPlain : Module<Tensor, Tensor>, IFeatureModel
{
    private readonly Sequential features;
    private readonly Sequential classifier;

    public CnnPlain(long numClasses, long inChannels) : base("cnn-plain")
    {
        features = Sequential(
            Conv2d(inChannels, 32, 3, padding: 1), ReLU(),
            Conv2d(32, 32, 3, padding: 1), ReLU(),
            MaxPool2d(2),
            Conv2d(32, 64, 3, padding: 1), ReLU(),
            Conv2d(64, 64, 3, padding: 1), ReLU(),
            MaxPool2d(2),
            AdaptiveAvgPool2d(new long[] { 4, 4 }));
        classifier = Sequential(Flatten(), Linear(64 * 16, 256), ReLU(), Linear(256, numClasses));
        RegisterComponents();
        ZooInit.KaimingConvUnitBatchNorm(this);
    }

    public override Tensor forward(Tensor x) => classifier.forward(features.forward(x));

    /// <summary>The 256 values after the classifier's hidden layer and its ReLU.</summary>
    public Tensor Features(Tensor x)
    {
        x = features.forward(x);
        var layers = classifier.children().Cast<Module<Tensor, Tensor>>().ToList();
        for (int i = 0; i < layers.Count - 1; i++) x = layers[i].forward(x);
        return x;
    }

    public Linear Head => (Linear)classifier.children().Last();
}
