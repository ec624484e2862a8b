using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Streaming.Models.Zoo;

/// <summary>The two-conv residual block of ResNet-18/34 and the CIFAR ResNets (torchvision's names).</summary>
internal sealed class BasicBlock : Module<Tensor, Tensor>
{
    public const int Expansion = 1;

    private readonly Conv2d conv1;
    private readonly StableBatchNorm2d bn1;
    private readonly Conv2d conv2;
    private readonly StableBatchNorm2d bn2;
    private readonly Sequential? downsample;

    public BasicBlock(long inplanes, long planes, long stride, Sequential? downsample) : base(nameof(BasicBlock))
    {
        conv1 = Conv2d(inplanes, planes, 3, stride: stride, padding: 1, bias: false);
        bn1 = new StableBatchNorm2d(planes);
        conv2 = Conv2d(planes, planes, 3, stride: 1, padding: 1, bias: false);
        bn2 = new StableBatchNorm2d(planes);
        this.downsample = downsample;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        var identity = downsample is null ? x : downsample.forward(x);
        var y = functional.relu(bn1.forward(conv1.forward(x)));
        y = bn2.forward(conv2.forward(y));
        return functional.relu(y.add_(identity, KeptScalars.One));
    }
}
