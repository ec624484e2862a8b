using Streaming.Models.Evaluation;

namespace Streaming.Models.Training;

public sealed record TrainResult(string ModelPath, long Steps, long ImagesSeen, double FinalLoss, TimeSpan Elapsed, double ImagesPerSecond, EvalResult? Eval, bool Resumed);
