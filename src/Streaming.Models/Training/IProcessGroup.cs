using static TorchSharp.torch;

namespace Streaming.Models.Training;

/// <summary>
/// The processes that train one model together, data-parallel (one MPI rank a process): the seam where distributed
/// training plugs into <see cref="Trainer"/>. Every rank reads the same global batches; each trains on its share of
/// every batch, the ranks average their gradients before each optimizer step, all start from rank 0's state, and rank 0
/// alone writes files and logs. <see cref="SingleProcess"/>, an ordinary run, does nothing at any hook.
/// </summary>
/// <remarks>
/// The hooks are collective: every rank calls them in the same order, as MPI's collectives must be called.
/// </remarks>
public interface IProcessGroup
{
    /// <summary>This process's rank, 0 to <see cref="Size"/> - 1. Rank 0 writes the run's files and logs; the others write nothing.</summary>
    int Rank { get; }

    /// <summary>How many processes train together.</summary>
    int Size { get; }

    /// <summary>
    /// The rows <c>[Start, Start + Count)</c> of every global batch of <paramref name="batchRows"/> rows that this process
    /// trains on (the loader decodes only those); called once, when the training loop is set up. The whole batch in one process.
    /// </summary>
    (int Start, int Count) ShareOf(int batchRows);

    /// <summary>
    /// Called once, after the model is built (or its checkpoint restored) and before the first step: every rank leaves
    /// with rank 0's parameters, buffers and <paramref name="optimizer"/>'s momentum.
    /// </summary>
    void BroadcastState(nn.Module model, Sgd optimizer);

    /// <summary>
    /// Called every step between <c>loss.backward()</c> and the optimizer's step: each parameter of
    /// <paramref name="model"/> that has a gradient gets the mean of that gradient over the ranks. Returns the mean of
    /// the ranks' <paramref name="loss"/> (what the whole batch's loss is), carried along with the gradients.
    /// </summary>
    float AverageGradients(nn.Module model, float loss);

    /// <summary>Each rank's <paramref name="mine"/>, in rank order, on every rank.</summary>
    IReadOnlyList<string> Gather(string mine);

    /// <summary>Rank 0's <paramref name="value"/>, on every rank.</summary>
    long Broadcast(long value);
}
