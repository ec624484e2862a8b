namespace Streaming.Models.Training;

/// <summary>A snapshot of a training run for the console.</summary>
public readonly record struct TrainProgress(long Step, long TotalSteps, long ImagesSeen, long TotalImages, double Loss, double Lr, double ImagesPerSecond, double? LastEvalTop1)
{
    public TimeSpan? Eta => ImagesPerSecond > 0 ? TimeSpan.FromSeconds((TotalImages - ImagesSeen) / ImagesPerSecond) : null;
}
