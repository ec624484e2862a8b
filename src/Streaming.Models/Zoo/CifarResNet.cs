using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Streaming.Models.Zoo;

/// <summary>
/// The CIFAR ResNets of He et al. (2016, section 4.2) for 28-64 px inputs: a 3x3 stem, three stages of
/// n basic blocks with 16/32/64 channels (times a width multiplier), depth 6n+2. Shortcuts that change
/// shape are 1x1 convolutions with BatchNorm (option B).
/// </summary>
public sealed class CifarResNet : Module<Tensor, Tensor>, IFeatureModel
{
    private readonly Conv2d conv1;
    private readonly StableBatchNorm2d bn1;
    private readonly Sequential layer1;
    private readonly Sequential layer2;
    private readonly Sequential layer3;
    private readonly AdaptiveAvgPool2d avgpool;
    private readonly Linear fc;

    public CifarResNet(string name, int depth, long numClasses, long inChannels, int width = 1) : base(name)
    {
        if (depth < 8 || (depth - 2) % 6 != 0) throw new ArgumentException($"CIFAR ResNet depth must be 6n+2, got {depth}");
        if (width < 1) throw new ArgumentException($"width multiplier must be at least 1, got {width}");
        int n = (depth - 2) / 6;
        long c = 16L * width;
        long inplanes = c;
        conv1 = Conv2d(inChannels, c, 3, stride: 1, padding: 1, bias: false);
        bn1 = new StableBatchNorm2d(c);
        layer1 = MakeStage(ref inplanes, c, n, 1);
        layer2 = MakeStage(ref inplanes, 2 * c, n, 2);
        layer3 = MakeStage(ref inplanes, 4 * c, n, 2);
        avgpool = AdaptiveAvgPool2d(new long[] { 1, 1 });
        fc = Linear(4 * c, numClasses);
        RegisterComponents();
        ZooInit.KaimingConvUnitBatchNorm(this);
    }

    private static Sequential MakeStage(ref long inplanes, long planes, int blocks, long stride)
    {
        var modules = new List<Module<Tensor, Tensor>>();
        for (int i = 0; i < blocks; i++)
        {
            long s = i == 0 ? stride : 1;
            Sequential? downsample = s != 1 || inplanes != planes
                ? Sequential(new PointwiseConv2d(inplanes, planes, s), new StableBatchNorm2d(planes))
                : null;
            modules.Add(new BasicBlock(inplanes, planes, s, downsample));
            inplanes = planes;
        }
        return Sequential(modules);
    }

    public override Tensor forward(Tensor x) => fc.forward(Features(x));

    public Tensor Features(Tensor x)
    {
        x = functional.relu(bn1.forward(conv1.forward(x)));
        x = layer3.forward(layer2.forward(layer1.forward(x)));
        return avgpool.forward(x).flatten(1);
    }

    public Linear Head => fc;
}
