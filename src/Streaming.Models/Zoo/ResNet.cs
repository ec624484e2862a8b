using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Streaming.Models.Zoo;

/// <summary>
/// ResNet and ResNeXt as torchvision builds them (He et al. 2016; Xie et al. 2017), with torchvision's
/// parameter names (conv1, bn1, layer1.0.conv1, ..., fc), so torchvision state dicts load as they are.
/// </summary>
public sealed class ResNet : Module<Tensor, Tensor>, IFeatureModel
{
    private readonly Conv2d conv1;
    private readonly StableBatchNorm2d bn1;
    private readonly MaxPool2d maxpool;
    private readonly Sequential layer1;
    private readonly Sequential layer2;
    private readonly Sequential layer3;
    private readonly Sequential layer4;
    private readonly AdaptiveAvgPool2d avgpool;
    private readonly Linear fc;

    private ResNet(string name, bool bottleneck, int[] layers, long numClasses, long inChannels, long groups, long widthPerGroup) : base(name)
    {
        long inplanes = 64;
        conv1 = Conv2d(inChannels, 64, 7, stride: 2, padding: 3, bias: false);
        bn1 = new StableBatchNorm2d(64);
        maxpool = MaxPool2d(3, stride: 2, padding: 1);
        layer1 = MakeLayer(bottleneck, ref inplanes, 64, layers[0], 1, groups, widthPerGroup);
        layer2 = MakeLayer(bottleneck, ref inplanes, 128, layers[1], 2, groups, widthPerGroup);
        layer3 = MakeLayer(bottleneck, ref inplanes, 256, layers[2], 2, groups, widthPerGroup);
        layer4 = MakeLayer(bottleneck, ref inplanes, 512, layers[3], 2, groups, widthPerGroup);
        avgpool = AdaptiveAvgPool2d(new long[] { 1, 1 });
        fc = Linear(512 * (bottleneck ? Bottleneck.Expansion : BasicBlock.Expansion), numClasses);
        RegisterComponents();
        ZooInit.KaimingConvUnitBatchNorm(this);
    }

    private static Sequential MakeLayer(bool bottleneck, ref long inplanes, long planes, int blocks, long stride, long groups, long widthPerGroup)
    {
        int expansion = bottleneck ? Bottleneck.Expansion : BasicBlock.Expansion;
        Sequential? downsample = null;
        if (stride != 1 || inplanes != planes * expansion)
            downsample = Sequential(new PointwiseConv2d(inplanes, planes * expansion, stride), new StableBatchNorm2d(planes * expansion));
        var modules = new List<Module<Tensor, Tensor>>
        {
            bottleneck ? new Bottleneck(inplanes, planes, stride, downsample, groups, widthPerGroup) : new BasicBlock(inplanes, planes, stride, downsample),
        };
        inplanes = planes * expansion;
        for (int i = 1; i < blocks; i++)
            modules.Add(bottleneck ? new Bottleneck(inplanes, planes, 1, null, groups, widthPerGroup) : new BasicBlock(inplanes, planes, 1, null));
        return Sequential(modules);
    }

    public override Tensor forward(Tensor x) => fc.forward(Features(x));

    public Tensor Features(Tensor x)
    {
        x = maxpool.forward(functional.relu(bn1.forward(conv1.forward(x))));
        x = layer4.forward(layer3.forward(layer2.forward(layer1.forward(x))));
        return avgpool.forward(x).flatten(1);
    }

    public Linear Head => fc;

    public static ResNet ResNet18(long numClasses = 1000, long inChannels = 3) => new("resnet18", false, [2, 2, 2, 2], numClasses, inChannels, 1, 64);
    public static ResNet ResNet34(long numClasses = 1000, long inChannels = 3) => new("resnet34", false, [3, 4, 6, 3], numClasses, inChannels, 1, 64);
    public static ResNet ResNet50(long numClasses = 1000, long inChannels = 3) => new("resnet50", true, [3, 4, 6, 3], numClasses, inChannels, 1, 64);
    public static ResNet ResNeXt50_32x4d(long numClasses = 1000, long inChannels = 3) => new("resnext50_32x4d", true, [3, 4, 6, 3], numClasses, inChannels, 32, 4);
    public static ResNet ResNeXt101_32x4d(long numClasses = 1000, long inChannels = 3) => new("resnext101_32x4d", true, [3, 4, 23, 3], numClasses, inChannels, 32, 4);
    public static ResNet ResNeXt101_32x8d(long numClasses = 1000, long inChannels = 3) => new("resnext101_32x8d", true, [3, 4, 23, 3], numClasses, inChannels, 32, 8);
    /// <summary>The paper's teacher (Mahajan et al.'s weakly-supervised models use this shape and naming).</summary>
    public static ResNet ResNeXt101_32x16d(long numClasses = 1000, long inChannels = 3) => new("resnext101_32x16d", true, [3, 4, 23, 3], numClasses, inChannels, 32, 16);
}
