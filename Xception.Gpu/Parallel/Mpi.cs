using System.Runtime.InteropServices;

namespace Xception.Gpu.Parallel;

/// <summary>
/// The processes of an <c>mpirun</c> job as one collective, through Open MPI's libmpi (Debian's openmpi-bin
/// and libopenmpi-dev; loaded at run time, so machines without it only fail when MPI is asked for).
///
/// Open MPI's handles are addresses of exported globals (MPI_COMM_WORLD is &amp;ompi_mpi_comm_world, and so on),
/// looked up with <see cref="NativeLibrary.GetExport"/>. MPI is initialised with MPI_THREAD_SERIALIZED: the
/// calls come from whichever replica thread leads a step, never from two threads at once. One per process;
/// <see cref="Dispose"/> finalises MPI.
/// </summary>
public sealed unsafe class MpiCollective : ICollective, IDisposable
{
    const int ThreadSerialized = 2; // MPI_THREAD_SERIALIZED in Open MPI's mpi.h
    const int Success = 0;

    static MpiCollective? current;

    readonly nint lib;
    readonly nint world, mpiFloat, mpiDouble, opSum;
    readonly delegate* unmanaged<float*, float*, int, nint, nint, nint, int> allReduce; // (sendbuf, recvbuf, ...) with MPI_IN_PLACE as sendbuf
    readonly delegate* unmanaged<double*, double*, int, nint, nint, nint, int> allReduceD;
    readonly delegate* unmanaged<nint, int, int> abort;
    readonly delegate* unmanaged<int> finalize;
    bool disposed;

    public int Rank { get; }
    public int Size { get; }

    /// <summary>The host this rank runs on (for messages).</summary>
    public string Host { get; } = Environment.MachineName;

    /// <summary>True when this process was started by Open MPI's mpirun (or another PMIx launcher).</summary>
    public static bool LaunchedByMpirun =>
        Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") is not null || Environment.GetEnvironmentVariable("PMIX_RANK") is not null;

    MpiCollective()
    {
        if (!NativeLibrary.TryLoad("libmpi.so.40", out lib) && !NativeLibrary.TryLoad("libmpi.so", out lib))
            throw new MpiException("Open MPI's libmpi.so.40 was not found; install it (apt-get install openmpi-bin libopenmpi-dev) and start the ranks with mpirun");
        nint Sym(string name) => NativeLibrary.TryGetExport(lib, name, out var p) ? p
            : throw new MpiException($"the loaded libmpi has no '{name}'; Open MPI 4 or later is needed (MPICH's handles are integers, which this binding does not speak)");
        world = Sym("ompi_mpi_comm_world");
        mpiFloat = Sym("ompi_mpi_float");
        mpiDouble = Sym("ompi_mpi_double");
        opSum = Sym("ompi_mpi_op_sum");
        allReduce = (delegate* unmanaged<float*, float*, int, nint, nint, nint, int>)Sym("MPI_Allreduce");
        allReduceD = (delegate* unmanaged<double*, double*, int, nint, nint, nint, int>)Sym("MPI_Allreduce");
        abort = (delegate* unmanaged<nint, int, int>)Sym("MPI_Abort");
        finalize = (delegate* unmanaged<int>)Sym("MPI_Finalize");
        var initThread = (delegate* unmanaged<int*, nint*, int, int*, int>)Sym("MPI_Init_thread");
        var commRank = (delegate* unmanaged<nint, int*, int>)Sym("MPI_Comm_rank");
        var commSize = (delegate* unmanaged<nint, int*, int>)Sym("MPI_Comm_size");

        int provided = 0;
        Check(initThread(null, null, ThreadSerialized, &provided), "MPI_Init_thread");
        if (provided < ThreadSerialized)
            throw new MpiException($"this Open MPI provides thread level {provided}; MPI_THREAD_SERIALIZED (2) is needed");
        int rank, size;
        Check(commRank(world, &rank), "MPI_Comm_rank");
        Check(commSize(world, &size), "MPI_Comm_size");
        Rank = rank;
        Size = size;
    }

    /// <summary>Initialises MPI (once per process) and returns the job's world.</summary>
    /// <exception cref="MpiException">Open MPI is missing, too old, or failed to start</exception>
    public static MpiCollective Start()
    {
        if (current is { disposed: false }) return current;
        if (current is not null) throw new MpiException("MPI was finalised in this process; it cannot be started again");
        return current = new MpiCollective();
    }

    static void Check(int code, string call)
    {
        if (code != Success) throw new MpiException($"{call} failed with MPI error {code}");
    }

    public void AllReduceSum(float[] data)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        // MPI counts are ints; 2^31 - 1 values is more than any gradient here, but chunk to be safe.
        fixed (float* p = data)
            for (long at = 0; at < data.Length; at += int.MaxValue)
            {
                int n = (int)Math.Min(int.MaxValue, data.Length - at);
                Check(allReduce((float*)1, p + at, n, mpiFloat, opSum, world), "MPI_Allreduce"); // (void*)1 is MPI_IN_PLACE in Open MPI
            }
    }

    public void AllReduceSum(double[] data)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        fixed (double* p = data)
            for (long at = 0; at < data.Length; at += int.MaxValue)
            {
                int n = (int)Math.Min(int.MaxValue, data.Length - at);
                Check(allReduceD((double*)1, p + at, n, mpiDouble, opSum, world), "MPI_Allreduce");
            }
    }

    /// <summary>
    /// Ends every rank of the job (MPI_Abort on the world): a rank that failed must not leave the others
    /// waiting in an all-reduce forever. Does not return.
    /// </summary>
    public void Abort(int code)
    {
        abort(world, code);
        Environment.Exit(code); // not reached with a conforming MPI
    }

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        finalize();
    }
}
