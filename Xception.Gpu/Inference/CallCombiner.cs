using System.Runtime.ExceptionServices;

namespace Xception.Gpu.Inference;

/// <summary>
/// The device lock of an <see cref="XceptionModel"/> and the queue of calls waiting for it. A caller queues its
/// request, then takes the lock; whoever holds it runs everything queued so far as one group (the model's
/// <c>execute</c>), so concurrent calls are combined without a thread of their own and without waiting for a
/// batch to fill; a request that another caller's group already served returns at once. When a group fails as a
/// whole, each of its requests runs alone, so that an error reaches only the caller whose request caused it.
/// </summary>
/// <typeparam name="TRequest">what a caller asks for</typeparam>
/// <typeparam name="TResult">what it gets back</typeparam>
internal sealed class CallCombiner<TRequest, TResult>(object owner, Func<IReadOnlyList<TRequest>, TResult[]> execute)
{
    sealed class Call(TRequest request)
    {
        public readonly TRequest Request = request;
        public TResult? Result;
        public Exception? Error;
        public bool Done;
    }

    /// <summary>Held while the device runs; the device, its kernels and the executors are not thread-safe.</summary>
    readonly object gate = new();
    readonly Queue<Call> pending = new();
    bool disposed;
    long runs, requests;

    /// <summary>Groups run so far and the requests they served: Requests / Runs is the average combined.</summary>
    public (long Runs, long Requests) Stats => (Interlocked.Read(ref runs), Interlocked.Read(ref requests));

    /// <summary>Serves <paramref name="request"/>, combined with every other call that is waiting.</summary>
    public TResult Run(TRequest request)
    {
        var call = new Call(request);
        lock (pending) pending.Enqueue(call);
        lock (gate)
        {
            if (!call.Done)
            {
                ObjectDisposedException.ThrowIf(disposed, owner);
                List<Call> group;
                lock (pending)
                {
                    group = [.. pending];
                    pending.Clear();
                }
                Serve(group);
            }
        }
        if (call.Error is { } e) ExceptionDispatchInfo.Throw(e);
        return call.Result!;
    }

    void Serve(List<Call> group)
    {
        Interlocked.Increment(ref runs);
        Interlocked.Add(ref requests, group.Count);
        if (group.Count > 1)
        {
            try
            {
                var results = execute([.. group.Select(c => c.Request)]);
                for (int i = 0; i < group.Count; i++) (group[i].Result, group[i].Done) = (results[i], true);
                return;
            }
            catch (Exception) when (!disposed) { }
        }
        foreach (var c in group)
        {
            try { c.Result = execute([c.Request])[0]; }
            catch (Exception e) { c.Error = e; }
            c.Done = true;
        }
    }

    /// <summary>Runs <paramref name="body"/> alone on the device (under the lock the combined calls take).</summary>
    public T Exclusive<T>(Func<T> body)
    {
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(disposed, owner);
            return body();
        }
    }

    /// <summary>Waits for the group in progress, then runs <paramref name="dispose"/> once; later calls are refused.</summary>
    public void Close(Action dispose)
    {
        lock (gate)
        {
            if (disposed) return;
            disposed = true;
            dispose();
        }
    }
}
