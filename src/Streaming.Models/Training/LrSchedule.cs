namespace Streaming.Models.Training;

/// <summary>The shapes of learning-rate schedules.</summary>
public enum ScheduleKind
{
    /// <summary>The paper's pre-training: halve the rate 13 times at equal steps.</summary>
    Pretrain,
    /// <summary>The paper's fine-tuning: three drops of 0.1, at 1/4, 2/4 and 3/4 of the budget.</summary>
    Finetune,
    /// <summary>Cosine decay to zero.</summary>
    Cosine,
    /// <summary>Constant after warm-up.</summary>
    Constant,
}

/// <summary>
/// Learning rate as a function of images processed (the paper counts its budget, "#iter", in images).
/// A linear warm-up from 0 to the peak over <see cref="WarmupImages"/> comes first; the decay shape is
/// applied over the whole budget. Pure: the rate at a position depends on nothing else, so a resumed
/// run continues on exactly the same curve.
/// </summary>
public sealed record LrSchedule(ScheduleKind Kind, double PeakLr, long TotalImages, long WarmupImages = 0)
{
    /// <summary>The linear scaling rule (Goyal et al.): lr = base x batch / 256.</summary>
    public static double Scaled(double baseLr, int batchSize) => baseLr * batchSize / 256.0;

    public double At(long imagesSeen)
    {
        if (TotalImages <= 0) return PeakLr;
        if (WarmupImages > 0 && imagesSeen < WarmupImages) return PeakLr * (imagesSeen + 1) / WarmupImages;
        double progress = Math.Clamp((double)imagesSeen / TotalImages, 0, 1);
        return Kind switch
        {
            ScheduleKind.Pretrain => PeakLr * Math.Pow(0.5, Math.Min(13, Math.Floor(progress * 14))),
            ScheduleKind.Finetune => PeakLr * Math.Pow(0.1, Math.Min(3, Math.Floor(progress * 4))),
            ScheduleKind.Cosine => PeakLr * 0.5 * (1 + Math.Cos(Math.PI * progress)),
            ScheduleKind.Constant => PeakLr,
            _ => throw new ArgumentOutOfRangeException(nameof(Kind)),
        };
    }
}
