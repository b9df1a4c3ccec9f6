namespace Xception.Gpu.Parallel;

/// <summary>
/// Collective operations among the replicas of a data-parallel run. Every replica calls the same operations
/// in the same order; each call returns when all have made it.
/// </summary>
public interface ICollective
{
    int Rank { get; }
    int Size { get; }

    /// <summary>Replaces <paramref name="data"/> with its element-wise sum over all replicas, identical on all.</summary>
    void AllReduceSum(float[] data);
}

/// <summary>
/// Replicas in one process, one thread each. The sum is taken in rank order by every replica, so all replicas
/// get bit-identical results and the result does not depend on thread timing.
/// </summary>
public sealed class LocalGroup
{
    readonly Barrier barrier;
    readonly float[]?[] posted;
    readonly CancellationTokenSource abort = new();
    volatile bool broken;

    public LocalGroup(int size)
    {
        if (size < 1) throw new XceptionException($"a replica group needs at least one replica, got {size}");
        Size = size;
        posted = new float[size][];
        barrier = new Barrier(size);
    }

    public int Size { get; }

    /// <summary>The collective as seen by replica <paramref name="rank"/>.</summary>
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

    void Wait()
    {
        if (broken) throw new XceptionException("another replica failed; this one stops too");
        try
        {
            if (!barrier.SignalAndWait(TimeSpan.FromMinutes(10), abort.Token))
            {
                Abort();
                throw new XceptionException("a replica did not reach the all-reduce within 10 minutes: stopping");
            }
        }
        catch (OperationCanceledException)
        {
            throw new XceptionException("another replica failed; this one stops too");
        }
        if (broken) throw new XceptionException("another replica failed; this one stops too");
    }

    void AllReduce(int rank, float[] data)
    {
        posted[rank] = data;
        Wait();
        var sum = new float[data.Length];
        for (int r = 0; r < Size; r++)
        {
            var src = posted[r]!;
            if (src.Length != data.Length)
                throw new XceptionException($"all-reduce: replica {r} sent {src.Length} values, replica {rank} {data.Length}");
            for (int i = 0; i < sum.Length; i++) sum[i] += src[i];
        }
        Wait(); // everyone has read every buffer before anyone overwrites its own
        sum.CopyTo(data, 0);
    }

    sealed class MemberView(LocalGroup group, int rank) : ICollective
    {
        public int Rank => rank;
        public int Size => group.Size;
        public void AllReduceSum(float[] data) => group.AllReduce(rank, data);
    }
}
