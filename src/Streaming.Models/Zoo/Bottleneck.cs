using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Streaming.Models.Zoo;

/// <summary>The 1x1-3x3-1x1 block of ResNet-50+ and ResNeXt (grouped 3x3), with torchvision's names.</summary>
internal sealed class Bottleneck : Module<Tensor, Tensor>
{
    public const int Expansion = 4;

    private readonly PointwiseConv2d conv1;
    private readonly StableBatchNorm2d bn1;
    private readonly Conv2d conv2;
    private readonly StableBatchNorm2d bn2;
    private readonly PointwiseConv2d conv3;
    private readonly StableBatchNorm2d bn3;
    private readonly Sequential? downsample;

    public Bottleneck(long inplanes, long planes, long stride, Sequential? downsample, long groups, long baseWidth) : base(nameof(Bottleneck))
    {
        long width = (long)(planes * (baseWidth / 64.0)) * groups;
        conv1 = new PointwiseConv2d(inplanes, width);
        bn1 = new StableBatchNorm2d(width);
        conv2 = Conv2d(width, width, 3, stride: stride, padding: 1, groups: groups, bias: false);
        bn2 = new StableBatchNorm2d(width);
        conv3 = new PointwiseConv2d(width, planes * Expansion);
        bn3 = new StableBatchNorm2d(planes * Expansion);
        this.downsample = downsample;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        var identity = downsample is null ? x : downsample.forward(x);
        var y = functional.relu(bn1.forward(conv1.forward(x)));
        y = functional.relu(bn2.forward(conv2.forward(y)));
        y = bn3.forward(conv3.forward(y));
        return functional.relu(y.add_(identity, KeptScalars.One));
    }
}
