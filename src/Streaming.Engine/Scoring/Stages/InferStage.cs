using Streaming.Core.Dataflow;
using Streaming.Models.Teachers;

namespace Streaming.Engine.Scoring.Stages;

/// <summary>
/// Infer: the teacher on a batch's decoded images, with softmax and the top-P' classes computed where the model runs
/// (<see cref="Streaming.Core.Selection.TopP"/>), so only P' (class, probability) pairs an image come back, into the batch's own columns.
/// The pixel buffer goes back to the pool here.
/// </summary>
public sealed class InferStage : Stage<ImageBatch, ImageBatch>
{
    private readonly ImageBatchPool _pool;
    private readonly ITeacher _teacher;
    private readonly int _topP;

    public InferStage(ImageBatchPool pool, ITeacher teacher, int topP, CancellationToken cancellationToken)
        : base("infer", workers: 1, capacity: 1, cancellationToken)
    {
        _pool = pool;
        _teacher = teacher;
        _topP = topP;
    }

    protected override async ValueTask ProcessAsync(ImageBatch batch)
    {
        Stats.In(batch.Count);
        if (batch.Good > 0)
            _teacher.TopK(batch.Pixels!, batch.Good, _topP, batch.Classes.AsSpan(0, batch.Good * _topP), batch.Probs.AsSpan(0, batch.Good * _topP));
        batch.ReturnPixels();
        Stats.Out(batch.Count);
        await EmitAsync(batch).ConfigureAwait(false);
    }

    protected override void Discard(ImageBatch item) => _pool.Return(item);

    protected override void DiscardOutput(ImageBatch item) => _pool.Return(item);
}
