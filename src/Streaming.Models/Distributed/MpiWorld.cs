using System.Runtime.InteropServices;
using System.Text;

namespace Streaming.Models.Distributed;

/// <summary>
/// The MPI world a rank trains in (<see cref="Start"/>): its rank and size, and the collectives training uses, each
/// checked. A failed MPI call is not returned from: the rank says what failed, in one line, and aborts the whole job
/// (a rank that left a collective would leave the others waiting for ever). Calls are serialized: an async training
/// loop makes them from more than one thread, but never two at once.
/// </summary>
public sealed unsafe class MpiWorld : IDisposable
{
    private readonly Lock _gate = new();
    private readonly nint _comm;
    private bool _finalized;

    private MpiWorld(WorldInfo info, nint comm)
    {
        Info = info;
        _comm = comm;
    }

    public WorldInfo Info { get; }
    public int Rank => Info.Rank;
    public int Size => Info.Size;

    /// <summary>Rank 0: the one that writes files and logs.</summary>
    public bool IsRoot => Info.Rank == 0;

    /// <summary>Initializes MPI (serialized threads) and checks that its world is the one the launcher announced.</summary>
    public static MpiWorld Start(WorldInfo info)
    {
        MpiNative.EnsureLoaded();
        int provided, rank, size;
        Check(MpiNative.InitThread(null, null, MpiNative.ThreadSerialized, &provided), "MPI_Init_thread", info.Rank);
        if (provided < MpiNative.ThreadSerialized)
            Fail(info.Rank, $"this MPI gives thread level {provided}; training needs MPI_THREAD_SERIALIZED ({MpiNative.ThreadSerialized})");
        nint comm = MpiNative.CommWorld;
        // Errors come back to us (and we abort with a message) rather than killing the process silently.
        Check(MpiNative.CommSetErrhandler(comm, MpiNative.ErrorsReturn), "MPI_Comm_set_errhandler", info.Rank);
        Check(MpiNative.CommRank(comm, &rank), "MPI_Comm_rank", info.Rank);
        Check(MpiNative.CommSize(comm, &size), "MPI_Comm_size", info.Rank);
        if (rank != info.Rank || size != info.Size)
            Fail(info.Rank, $"MPI says rank {rank} of {size}, the launcher's environment rank {info.Rank} of {info.Size}");
        var world = new MpiWorld(info, comm);
        // Who is where: to name a rank that dies, from the ranks on its host.
        s_peers = world.Allgather($"{Environment.MachineName} {Environment.ProcessId}")
            .Select(p => p.Split(' ')).Select(p => (p[0], int.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture))).ToArray();
        return world;
    }

    private static (string Host, int Pid)[] s_peers = [];

    /// <summary>
    /// What can be said of the ranks that are gone, from this host: those on it whose process no longer exists (a rank on
    /// another host cannot be checked from here; the launcher's own message names it).
    /// </summary>
    public static string WhoIsGone()
    {
        var gone = s_peers.Select((p, rank) => (p, rank))
            .Where(x => x.p.Host == Environment.MachineName && x.p.Pid != Environment.ProcessId && !Alive(x.p.Pid))
            .Select(x => $"rank {x.rank} (pid {x.p.Pid} on {x.p.Host})").ToList();
        return gone.Count > 0 ? $"{string.Join(", ", gone)} is gone" : "a rank on another host failed (the launcher's message names it)";
    }

    /// <summary>Whether a process of this host runs (a zombie, dead but not yet reaped by its launcher, does not).</summary>
    private static bool Alive(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            int close = stat.LastIndexOf(')'); // the command name may hold spaces
            return close + 2 < stat.Length && stat[close + 2] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return true;
        }
    }

    /// <summary>Sums <paramref name="data"/> over the ranks, in place.</summary>
    public void AllreduceSum(Span<float> data)
    {
        if (data.IsEmpty) return;
        lock (_gate)
            fixed (float* p = data)
                Check(MpiNative.Allreduce((void*)MpiNative.InPlace, p, data.Length, MpiNative.Float, MpiNative.Sum, _comm), "MPI_Allreduce", Rank);
    }

    /// <summary>The largest of the ranks' values.</summary>
    public long AllreduceMax(long value)
    {
        long result;
        lock (_gate) Check(MpiNative.Allreduce(&value, &result, 1, MpiNative.LongLong, MpiNative.Max, _comm), "MPI_Allreduce", Rank);
        return result;
    }

    /// <summary>Rank 0's bytes, into every rank's <paramref name="data"/> (the same length on every rank).</summary>
    public void Broadcast(Span<byte> data)
    {
        if (data.IsEmpty) return;
        lock (_gate)
            fixed (byte* p = data)
                Check(MpiNative.Bcast(p, data.Length, MpiNative.Byte, 0, _comm), "MPI_Bcast", Rank);
    }

    /// <summary>Each rank's <paramref name="mine"/>, in rank order, on every rank.</summary>
    public string[] Allgather(string mine)
    {
        var bytes = Encoding.UTF8.GetBytes(mine);
        int length = bytes.Length;
        var lengths = new int[Size];
        lock (_gate)
        {
            fixed (int* l = lengths)
                Check(MpiNative.Allgather(&length, 1, MpiNative.Int, l, 1, MpiNative.Int, _comm), "MPI_Allgather", Rank);
            int width = Math.Max(1, lengths.Max());
            var padded = new byte[width];
            bytes.CopyTo(padded, 0);
            var all = new byte[width * Size];
            fixed (byte* s = padded)
            fixed (byte* r = all)
                Check(MpiNative.Allgather(s, width, MpiNative.Byte, r, width, MpiNative.Byte, _comm), "MPI_Allgather", Rank);
            return Enumerable.Range(0, Size).Select(i => Encoding.UTF8.GetString(all, i * width, lengths[i])).ToArray();
        }
    }

    public void Barrier()
    {
        lock (_gate) Check(MpiNative.Barrier(_comm), "MPI_Barrier", Rank);
    }

    /// <summary>Ends the whole job: every rank, with <paramref name="code"/>. Does not return.</summary>
    public void Abort(int code)
    {
        Console.Error.Flush();
        MpiNative.Abort(_comm, code);
        Environment.Exit(code); // (MPI_Abort does not return; this only satisfies the compiler's view of it)
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_finalized) return;
            _finalized = true;
            MpiNative.Finalize();
        }
    }

    private static void Check(int code, string call, int rank)
    {
        if (code == MpiNative.Success) return;
        var text = new byte[512];
        int length = 0;
        fixed (byte* t = text) MpiNative.ErrorString(code, t, &length);
        Fail(rank, $"{call} failed: {Encoding.ASCII.GetString(text, 0, Math.Clamp(length, 0, text.Length))}");
    }

    /// <summary>One line on stderr, then the whole job ends: a rank never returns from a failed collective.</summary>
    private static void Fail(int rank, string message)
    {
        Console.Error.WriteLine($"[rank {rank}] error: {message}{(s_peers.Length > 0 ? $" ({WhoIsGone()})" : "")}; ending the job");
        Console.Error.Flush();
        MpiNative.Abort(MpiNative.CommWorld, 1);
        Environment.Exit(1);
    }
}
