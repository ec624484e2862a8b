using System.Runtime.InteropServices;

namespace Streaming.Models.Distributed;

/// <summary>
/// The few MPI calls training needs, over Open MPI's <c>libmpi.so.40</c> (Debian's <c>libopenmpi3</c>): init, rank and
/// size, allreduce, broadcast, allgather, barrier, abort, finalize. Open MPI's handles (<c>MPI_COMM_WORLD</c>,
/// <c>MPI_FLOAT</c>, <c>MPI_SUM</c>, ...) are the addresses of its predefined objects, looked up by name. No collective
/// is written here: every one is Open MPI's.
/// </summary>
internal static unsafe partial class MpiNative
{
    public const string Library = "libmpi.so.40";

    public const int ThreadSerialized = 2;
    public const int Success = 0;

    private static readonly Lazy<nint> s_library = new(() =>
    {
        try
        {
            return NativeLibrary.Load(Library);
        }
        catch (DllNotFoundException e)
        {
            throw new Streaming.Core.StreamingException($"training across processes needs Open MPI's {Library} (Debian: apt-get install openmpi-bin): {e.Message}");
        }
    });

    private static nint Handle(string name) => NativeLibrary.GetExport(s_library.Value, name);

    public static nint CommWorld => Handle("ompi_mpi_comm_world");
    public static nint Float => Handle("ompi_mpi_float");
    public static nint Byte => Handle("ompi_mpi_byte");
    public static nint Int => Handle("ompi_mpi_int");
    public static nint LongLong => Handle("ompi_mpi_long_long_int");
    public static nint Sum => Handle("ompi_mpi_op_sum");
    public static nint Max => Handle("ompi_mpi_op_max");
    public static nint ErrorsReturn => Handle("ompi_mpi_errors_return");

    /// <summary>MPI_IN_PLACE in Open MPI.</summary>
    public static readonly nint InPlace = 1;

    /// <summary>Loads the library (so a missing one is one clear error before anything else).</summary>
    public static void EnsureLoaded() => _ = s_library.Value;

    [LibraryImport(Library, EntryPoint = "MPI_Init_thread")]
    public static partial int InitThread(int* argc, byte*** argv, int required, int* provided);

    [LibraryImport(Library, EntryPoint = "MPI_Initialized")]
    public static partial int Initialized(int* flag);

    [LibraryImport(Library, EntryPoint = "MPI_Finalize")]
    public static partial int Finalize();

    [LibraryImport(Library, EntryPoint = "MPI_Comm_rank")]
    public static partial int CommRank(nint comm, int* rank);

    [LibraryImport(Library, EntryPoint = "MPI_Comm_size")]
    public static partial int CommSize(nint comm, int* size);

    [LibraryImport(Library, EntryPoint = "MPI_Comm_set_errhandler")]
    public static partial int CommSetErrhandler(nint comm, nint handler);

    [LibraryImport(Library, EntryPoint = "MPI_Allreduce")]
    public static partial int Allreduce(void* send, void* receive, int count, nint datatype, nint op, nint comm);

    [LibraryImport(Library, EntryPoint = "MPI_Bcast")]
    public static partial int Bcast(void* buffer, int count, nint datatype, int root, nint comm);

    [LibraryImport(Library, EntryPoint = "MPI_Allgather")]
    public static partial int Allgather(void* send, int sendCount, nint sendType, void* receive, int receiveCount, nint receiveType, nint comm);

    [LibraryImport(Library, EntryPoint = "MPI_Barrier")]
    public static partial int Barrier(nint comm);

    [LibraryImport(Library, EntryPoint = "MPI_Abort")]
    public static partial int Abort(nint comm, int code);

    [LibraryImport(Library, EntryPoint = "MPI_Error_string")]
    public static partial int ErrorString(int code, byte* text, int* length);
}
