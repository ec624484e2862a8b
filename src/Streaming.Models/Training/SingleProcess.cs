using static TorchSharp.torch;

namespace Streaming.Models.Training;

/// <summary>An ordinary run: one process, the whole batch, nothing to share or average.</summary>
public sealed class SingleProcess : IProcessGroup
{
    private SingleProcess()
    {
    }

    /// <summary>The one instance.</summary>
    public static SingleProcess Instance { get; } = new();

    /// <inheritdoc/>
    public int Rank => 0;

    /// <inheritdoc/>
    public int Size => 1;

    /// <inheritdoc/>
    public (int Start, int Count) ShareOf(int batchRows) => (0, batchRows);

    /// <inheritdoc/>
    public void BroadcastState(nn.Module model, Sgd optimizer)
    {
    }

    /// <inheritdoc/>
    public float AverageGradients(nn.Module model, float loss) => loss;

    /// <inheritdoc/>
    public IReadOnlyList<string> Gather(string mine) => [mine];

    /// <inheritdoc/>
    public long Broadcast(long value) => value;
}
