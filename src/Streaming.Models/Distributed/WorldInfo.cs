using System.Globalization;

namespace Streaming.Models.Distributed;

/// <summary>
/// The MPI world a process was started in, as its launcher says in the environment: <c>mpirun</c> (Open MPI's
/// <c>OMPI_COMM_WORLD_*</c>) or Slurm's <c>srun</c> (<c>SLURM_PROCID</c>, <c>SLURM_NTASKS</c>, ...). Read before MPI is
/// initialized, so that a process started without a launcher never loads MPI at all.
/// </summary>
public sealed record WorldInfo(int Rank, int Size, int LocalRank, int LocalSize, string Launcher)
{
    /// <summary>This process alone.</summary>
    public static WorldInfo Single { get; } = new(0, 1, 0, 1, "none");

    /// <summary>Whether more than one process trains together.</summary>
    public bool IsDistributed => Size > 1;

    /// <summary>The launcher's world, or <see cref="Single"/> when the process was not started by one (or by one with one process).</summary>
    public static WorldInfo FromEnvironment(Func<string, string?>? env = null)
    {
        env ??= Environment.GetEnvironmentVariable;
        int? Int(string name) => int.TryParse(env(name), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v : null;
        if (Int("OMPI_COMM_WORLD_SIZE") is int size)
            return new WorldInfo(Int("OMPI_COMM_WORLD_RANK") ?? 0, size, Int("OMPI_COMM_WORLD_LOCAL_RANK") ?? 0, Int("OMPI_COMM_WORLD_LOCAL_SIZE") ?? 1, "mpirun");
        if (Int("SLURM_NTASKS") is int tasks && Int("SLURM_PROCID") is int rank)
            return new WorldInfo(rank, tasks, Int("SLURM_LOCALID") ?? 0, LocalTasks(env("SLURM_TASKS_PER_NODE"), env("SLURM_NODEID")) ?? 1, "srun");
        return Single;
    }

    /// <summary>Slurm's tasks on this node, from <c>SLURM_TASKS_PER_NODE</c> (e.g. <c>4(x2),3</c>) and this node's index.</summary>
    internal static int? LocalTasks(string? perNode, string? nodeId)
    {
        if (perNode is null || !int.TryParse(nodeId, NumberStyles.Integer, CultureInfo.InvariantCulture, out int node)) return null;
        foreach (var part in perNode.Split(','))
        {
            int open = part.IndexOf('(');
            int count = int.Parse(open < 0 ? part : part[..open], CultureInfo.InvariantCulture);
            int repeat = open < 0 ? 1 : int.Parse(part[(open + 2)..^1], CultureInfo.InvariantCulture);
            if (node < repeat) return count;
            node -= repeat;
        }
        return null;
    }

    /// <summary>The intra-op threads a rank uses when none are given: this host's cores shared among its ranks.</summary>
    public int DefaultThreads => Math.Max(1, Environment.ProcessorCount / Math.Max(1, LocalSize));

    /// <summary>The device a rank takes: with <c>cuda</c>, <c>cuda:LOCAL_RANK</c>; anything else as given.</summary>
    public string DeviceFor(string device) => device == "cuda" && IsDistributed ? $"cuda:{LocalRank}" : device;
}
