using System.Globalization;
using Streaming.Models.Zoo;

namespace Streaming.Models.Training;

/// <summary>
/// What <c>train</c> picks when it is not told: the budget, schedule, learning rate and weight decay, from the size of
/// the labeled data and the architecture. Every value given explicitly wins over the recipe's.
/// <para>
/// <b>Training from scratch.</b> A cosine schedule with base lr 0.2 (at batch 256) for the small models
/// (resnet20/32/56, cnn-small), the recipe measured on Fashion-MNIST (docs/results.md, "Defaults"), and 0.1 for
/// the ImageNet models (the paper's). The budget is <see cref="EpochsSmallData"/> epochs for the small models,
/// bounded below by <see cref="MinImages"/> images (a few hundred labels still get enough steps) and above by
/// <see cref="MaxImages"/> (60,000 images get 4.8 epochs, about 18 minutes of resnet20 on two
/// cores); the ImageNet models get 30 epochs. Up to <see cref="SmallData"/> labeled images, where over-fitting is
/// the risk, weight decay is <see cref="SmallDataWeightDecay"/> with random crops and flips; above, 1e-4 and no
/// augmentation, for a budget of a few epochs (perf/results/resnet20-full-60k.txt: 92.65% in 290,000 images without
/// it). A larger labeled set (a D-hat of a million images) gets the same 290,000, under one epoch: give --images.
/// </para>
/// <para><b>Fine-tuning</b> (<c>--init</c>): the paper's fine-tuning schedule (three drops by 10), base lr 0.00025, 30 epochs, weight decay 1e-4.
/// <b>The last layer alone</b> (<c>--freeze-backbone</c>): 30 epochs, cosine, base lr 0.1, weight decay 1e-4: a fresh linear
/// layer on fixed features needs the rate of training from scratch, not of fine-tuning.</para>
/// </summary>
public sealed record TrainRecipe(long Images, ScheduleKind Schedule, double BaseLr, double WeightDecay, bool Augment, string Why)
{
    /// <summary>Changes whenever the recipe picks other values: part of the key of a pipeline stage that trains by it.</summary>
    public const int Revision = 1;

    public const double EpochsSmallData = 70;
    public const long MinImages = 70_000, MaxImages = 290_000;
    public const long SmallData = 10_000;
    public const double SmallDataWeightDecay = 5e-4;

    /// <summary>The recipe for <paramref name="arch"/> on <paramref name="labeled"/> labeled images, from scratch or fine-tuning.</summary>
    public static TrainRecipe For(string arch, long labeled, bool fineTuning, bool frozenBackbone = false)
    {
        var inv = CultureInfo.InvariantCulture;
        if (frozenBackbone)
            return new TrainRecipe(Math.Max(1, (long)Math.Round(30.0 * labeled)), ScheduleKind.Cosine, 0.1, 1e-4, true,
                "the last layer alone: 30 epochs, cosine, base lr 0.1, weight decay 1e-4, crops and flips");
        if (fineTuning)
            return new TrainRecipe(Math.Max(1, (long)Math.Round(30.0 * labeled)), ScheduleKind.Finetune, 0.00025, 1e-4, true,
                "fine-tuning: 30 epochs, the finetune schedule, base lr 0.00025, weight decay 1e-4, crops and flips");
        bool imagenet = ModelZoo.NativeInputSize(arch) is not null;
        if (imagenet)
            return new TrainRecipe(Math.Max(1, 30 * labeled), ScheduleKind.Cosine, 0.1, 1e-4, true,
                "an ImageNet model: 30 epochs, cosine, base lr 0.1, weight decay 1e-4, crops and flips");
        long images = Math.Clamp((long)Math.Round(EpochsSmallData * labeled), MinImages, MaxImages);
        bool small = labeled <= SmallData;
        double wd = small ? SmallDataWeightDecay : 1e-4;
        return new TrainRecipe(images, ScheduleKind.Cosine, 0.2, wd, small, string.Create(inv,
            $"a small model on {labeled:N0} labeled images: {images:N0} images ({(double)images / Math.Max(1, labeled):0.#} epochs; {EpochsSmallData:0} epochs within {MinImages:N0}..{MaxImages:N0} images), cosine, base lr 0.2, {(small ? $"weight decay {wd:G2} and crops and flips (up to {SmallData:N0} labeled images)" : $"weight decay {wd:G2} and no augmentation (above {SmallData:N0} labeled images: a few epochs of much data)")}"));
    }
}
