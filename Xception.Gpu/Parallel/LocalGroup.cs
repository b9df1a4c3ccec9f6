using System.Numerics;

namespace Xception.Gpu.Parallel;

/// <summary>
/// Replicas in one process, one thread each. One replica (the first) adds the posted buffers in rank order,
/// so all replicas get bit-identical results that do not depend on thread timing.
///
/// With an <c>outer</c> collective (the processes of an MPI run, one LocalGroup in each), the local sum is
/// then all-reduced across the processes by the first replica alone while the others wait: replica
/// <c>local</c> of process <c>p</c> has global rank <c>p * Size + local</c>, and every process must hold the
/// same number of replicas.
/// </summary>
public sealed class LocalGroup
{
    readonly Barrier barrier;
    readonly Array?[] posted;
    readonly CancellationTokenSource abort = new();
    readonly ICollective? outer;
    volatile bool broken;

    public LocalGroup(int size, ICollective? outer = null)
    {
        if (size < 1) throw new ArgumentOutOfRangeException(nameof(size), $"a replica group needs at least one replica, got {size}");
        Size = size;
        this.outer = outer;
        posted = new Array[size];
        barrier = new Barrier(size);
    }

    /// <summary>Replicas in this process.</summary>
    public int Size { get; }

    /// <summary>Replicas in the whole run (all processes).</summary>
    public int GlobalSize => Size * (outer?.Size ?? 1);

    /// <summary>The collective as seen by local replica <paramref name="rank"/>.</summary>
    public ICollective Member(int rank) => new MemberView(this, rank);

    /// <summary>
    /// Releases every replica waiting in a collective (after one failed); they then throw, and so does every
    /// later collective: replicas that may have diverged do not go on. Safe to call from any thread, repeatedly.
    /// </summary>
    public void Abort()
    {
        broken = true;
        try { abort.Cancel(); } catch (ObjectDisposedException) { }
    }

    /// <summary>True after <see cref="Abort"/>: the group refuses every further collective.</summary>
    public bool Broken => broken;

    void Wait()
    {
        if (broken) throw new ReplicaAbortedException();
        try
        {
            // Generous: the slowest replica may be compiling kernels for its first step.
            if (!barrier.SignalAndWait(TimeSpan.FromMinutes(10), abort.Token))
            {
                Abort();
                throw new CollectiveException("a replica did not reach the all-reduce within 10 minutes: stopping");
            }
        }
        catch (OperationCanceledException)
        {
            throw new ReplicaAbortedException();
        }
        if (broken) throw new ReplicaAbortedException();
    }

    /// <summary>
    /// Sum buffers by element type and length, kept between calls (a model's gradients are ~91 MB). Only the
    /// first replica touches the dictionary, between barriers; every replica then writes its own slice.
    /// </summary>
    readonly Dictionary<(Type, int), Array> buffers = new();
    Array? current;

    void AllReduce<T>(int rank, T[] data, Action<T[]>? across) where T : struct, INumber<T>
    {
        posted[rank] = data;
        Wait();
        if (rank == 0)
        {
            if (!buffers.TryGetValue((typeof(T), data.Length), out current))
                buffers[(typeof(T), data.Length)] = current = new T[data.Length];
        }
        for (int r = 0; r < Size; r++)
            if (posted[r] is not T[] src || src.Length != data.Length)
            {
                Abort(); // every replica sees the same posts and stops here; none is left waiting
                throw new CollectiveException($"all-reduce: replica {r} sent {posted[r]?.Length} values of {posted[r]?.GetType().GetElementType()?.Name}, replica {rank} {data.Length} of {typeof(T).Name}");
            }
        Wait(); // the buffer is chosen; every replica sums its slice, each element in rank order
        var sum = (T[])current!;
        int lo = (int)((long)data.Length * rank / Size), hi = (int)((long)data.Length * (rank + 1) / Size);
        var first = (T[])posted[0]!;
        for (int i = lo; i < hi; i++) sum[i] = T.Zero + first[i];
        for (int r = 1; r < Size; r++)
        {
            var src = (T[])posted[r]!;
            for (int i = lo; i < hi; i++) sum[i] += src[i];
        }
        Wait();
        if (across is not null)
        {
            if (rank == 0)
            {
                try
                {
                    across(sum);
                }
                catch
                {
                    Abort();
                    throw;
                }
            }
            Wait();
        }
        sum.CopyTo(data, 0); // the next call's first barrier keeps the buffer until every replica has copied it
    }

    sealed class MemberView(LocalGroup group, int rank) : ICollective
    {
        public int Rank => (group.outer?.Rank ?? 0) * group.Size + rank;
        public int Size => group.GlobalSize;
        public void AllReduceSum(float[] data) => group.AllReduce(rank, data, group.outer is { } o ? o.AllReduceSum : null);
        public void AllReduceSum(double[] data) => group.AllReduce(rank, data, group.outer is { } o ? o.AllReduceSum : null);
    }
}
