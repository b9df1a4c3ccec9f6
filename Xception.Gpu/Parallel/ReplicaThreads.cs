namespace Xception.Gpu.Parallel;

/// <summary>The fan-out of a step over a process's replicas: a thread each, the first on the calling thread.</summary>
static class ReplicaThreads
{
    /// <summary>
    /// Runs <paramref name="work"/> for replicas 0 to <paramref name="count"/> - 1 at once and waits for all. A replica
    /// that throws calls <paramref name="onFailure"/> first (to release the replicas waiting for it in an
    /// all-reduce). Returns the index of the first real failure (a replica that failed of itself, not one released by
    /// the abort) and its exception, or (-1, null).
    /// </summary>
    public static (int Replica, Exception? Error) Run(int count, Action<int> work, Action onFailure)
    {
        var errors = new Exception?[count];
        void Guarded(int rank)
        {
            try { work(rank); }
            catch (Exception e)
            {
                errors[rank] = e;
                onFailure();
            }
        }
        var threads = new Thread[count - 1];
        for (int r = 1; r < count; r++)
        {
            int rank = r;
            threads[r - 1] = new Thread(() => Guarded(rank)) { IsBackground = true, Name = $"replica {rank}" };
            threads[r - 1].Start();
        }
        Guarded(0);
        foreach (var t in threads) t.Join();
        int failed = Array.FindIndex(errors, e => e is not null and not ReplicaAbortedException);
        if (failed < 0) failed = Array.FindIndex(errors, e => e is not null);
        return failed < 0 ? (-1, null) : (failed, errors[failed]);
    }
}
