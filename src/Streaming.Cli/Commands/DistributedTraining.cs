using System.Globalization;
using System.Runtime.InteropServices;
using Streaming.Cli.Shared;
using Streaming.Models.Distributed;
using Streaming.Models.Training;

namespace Streaming.Cli.Commands;

/// <summary>
/// <c>train</c> as one rank of an MPI job (<c>mpirun -np N streaming train ...</c>, or Slurm's <c>srun</c>): the world from
/// the launcher's environment, data-parallel training (<see cref="MpiProcessGroup"/>), rank 0 alone printing, the
/// others only their errors with their rank. A rank that fails ends the whole job; a rank the launcher stops (another
/// failed) says which one is gone.
/// </summary>
internal static class DistributedTraining
{
    public static async Task<int> RunAsync(WorldInfo world, TrainOptions options, Func<TrainOptions, IProcessGroup, Task<TrainResult>> train)
    {
        using var mpi = MpiWorld.Start(world);
        using var stopped = PosixSignalRegistration.Create(PosixSignal.SIGTERM, _ =>
        {
            Console.Error.WriteLine($"[rank {world.Rank}] stopping: {MpiWorld.WhoIsGone()}; the job ends");
            Console.Error.Flush();
            Environment.Exit(128 + 15);
        });
        var group = new MpiProcessGroup(mpi);
        TrainResult result;
        try
        {
            result = await train(options, group);
        }
        catch (GroupRefusal refusal)
        {
            // Every rank refuses alike; rank 0 says why, in one line.
            if (refusal.Speaks) Console.Error.WriteLine($"error: {refusal.Message}");
            return (int)ExitCode.BadInput;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // This rank alone failed (a shard it cannot read, a full disk): the others are in a collective, waiting for it.
            Console.Error.WriteLine($"[rank {world.Rank}] error: {e.Message}; ending the job");
            mpi.Abort(e is Streaming.Core.StreamingException ? (int)ExitCode.BadInput : (int)ExitCode.InternalError);
            throw;
        }
        if (mpi.IsRoot) Report(result, group);
        return (int)ExitCode.Ok;
    }

    private static void Report(TrainResult result, MpiProcessGroup group)
    {
        var inv = CultureInfo.InvariantCulture;
        double share = result.Elapsed.TotalSeconds > 0 ? group.CommunicationTime.TotalSeconds / result.Elapsed.TotalSeconds : 0;
        Console.WriteLine(string.Create(inv,
            $"{group.Size} ranks: allreduce {share:P1} of the time ({group.CommunicationTime.TotalSeconds:F1} s), {group.BytesPerStep / 1e6:F2} MB a step in {group.CallsPerStep} calls"));
    }
}
