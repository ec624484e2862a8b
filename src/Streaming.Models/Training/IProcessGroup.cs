using static TorchSharp.torch;

namespace Streaming.Models.Training;

/// <summary>
/// The processes that train one model together, data-parallel (one MPI rank a process): the seam where distributed
/// training plugs into <see cref="Trainer"/>. Every rank reads the same global batches; each trains on its share of
/// every batch, the ranks average their gradients before each optimizer step, all start from rank 0's state, and rank 0
/// alone writes files and logs. <see cref="SingleProcess"/>, an ordinary run, does nothing at any hook.
/// </summary>
/// <remarks>
/// Not ordered by these hooks yet: rank 0 copies a D-hat selection's images and prepares
/// the run folder (<c>--overwrite</c> empties it) while the other ranks read both; an implementation adds a barrier
/// there, or runs on data and folders prepared beforehand. The hooks are called in the same order on every rank, as
/// collective calls must be.
/// </remarks>
public interface IProcessGroup
{
    /// <summary>This process's rank, 0 to <see cref="Size"/> - 1. Rank 0 writes the run's files and logs; the others write nothing.</summary>
    int Rank { get; }

    /// <summary>How many processes train together.</summary>
    int Size { get; }

    /// <summary>
    /// The rows <c>[Start, Start + Count)</c> of a global batch of <paramref name="batchRows"/> rows that this process
    /// trains on; called once a step. The whole batch in one process.
    /// </summary>
    (long Start, long Count) ShareOf(long batchRows);

    /// <summary>
    /// Called once, after the model is built (or its checkpoint restored) and before the first step: every rank leaves
    /// with rank 0's parameters, buffers and <paramref name="optimizer"/>'s momentum.
    /// </summary>
    void BroadcastState(nn.Module model, Sgd optimizer);

    /// <summary>
    /// Called every step between <c>loss.backward()</c> and the optimizer's step: each parameter of
    /// <paramref name="model"/> that has a gradient gets the mean of that gradient over the ranks.
    /// </summary>
    void AverageGradients(nn.Module model);
}
