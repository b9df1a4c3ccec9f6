using System.Collections.Concurrent;
using System.Diagnostics;
using Xception.Gpu.Graph;

namespace Xception.Gpu.Parallel;

/// <summary>
/// One replica's gradient all-reduce in buckets, overlapped with its backward pass: consecutive trainable
/// parameters (in reverse layer order, the order the backward pass finishes them) are grouped into buckets of
/// about <c>bucketBytes</c>; as soon as a bucket's layers are differentiated it is staged on the host and summed
/// by a reducer thread while the backward pass goes on; afterwards the sums are copied back into the gradients.
/// Every replica cuts the same buckets (the same model walked in the same order), so the collectives match.
/// </summary>
sealed class GradientBuckets
{
    /// <summary>Consecutive trainable parameters all-reduced together, and their host staging buffer.</summary>
    sealed class Bucket(List<Parameter> parameters)
    {
        public List<Parameter> Parameters { get; } = parameters;
        public float[] Host { get; } = new float[parameters.Sum(p => (long)p.Length)];
        public int Pending;
    }

    List<Bucket>? buckets;
    long cutAt;

    /// <summary>The buckets' sizes in bytes (empty before the first backward pass).</summary>
    public IReadOnlyList<long> Sizes => buckets?.Select(b => b.Host.LongLength * 4).ToList() ?? [];

    /// <summary>
    /// Runs <paramref name="executor"/>'s backward pass from <paramref name="outputGrad"/> with the gradients of
    /// <paramref name="model"/> summed over <paramref name="member"/>'s group in buckets of about
    /// <paramref name="bucketBytes"/>. A failing reducer calls <paramref name="abort"/> (to release the other replicas)
    /// and its error is rethrown. Returns the time spent waiting for the reducer after the backward pass.
    /// </summary>
    public TimeSpan Backward(Model model, Executor executor, Tensor<float> outputGrad, long bucketBytes, ICollective member, Action abort)
    {
        var list = Cut(model, bucketBytes);
        var owner = new Dictionary<Parameter, Bucket>();
        foreach (var b in list)
        {
            b.Pending = b.Parameters.Count;
            foreach (var p in b.Parameters) owner[p] = b;
        }
        using var ready = new BlockingCollection<Bucket>();
        Exception? reduceError = null;
        var reducer = new Thread(() =>
        {
            try
            {
                foreach (var b in ready.GetConsumingEnumerable()) member.AllReduceSum(b.Host);
            }
            catch (Exception e)
            {
                reduceError = e;
                abort();
            }
        }) { IsBackground = true, Name = $"replica {member.Rank} all-reduce" };
        reducer.Start();
        executor.AfterLayerBackward = layer =>
        {
            foreach (var p in layer.Parameters)
            {
                if (!p.Trainable || !owner.TryGetValue(p, out var b) || --b.Pending > 0) continue;
                long at = 0;
                foreach (var q in b.Parameters) { q.Grad!.CopyTo(b.Host.AsSpan((int)at, q.Length)); at += q.Length; }
                ready.Add(b);
            }
        };
        Stopwatch clock;
        try
        {
            executor.Backward(outputGrad);
        }
        finally
        {
            executor.AfterLayerBackward = null;
            ready.CompleteAdding();
            clock = Stopwatch.StartNew();
            reducer.Join();
        }
        var waited = clock.Elapsed;
        if (reduceError is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(reduceError).Throw();
        if (list.Any(b => b.Pending > 0))
            throw new InvalidOperationException("a gradient bucket was never completed by the backward pass");
        foreach (var b in list)
        {
            long at = 0;
            foreach (var q in b.Parameters) { q.Grad!.CopyFrom(b.Host.AsSpan((int)at, q.Length)); at += q.Length; }
        }
        return waited;
    }

    /// <summary>The buckets for the model's trainable parameters now: cut again when freezing changed which exist, or the size changed.</summary>
    List<Bucket> Cut(Model model, long bucketBytes)
    {
        var trainable = model.Layers.Reverse().SelectMany(l => l.Parameters.Where(p => p.Trainable)).ToList();
        if (buckets is not null && cutAt == bucketBytes && buckets.SelectMany(b => b.Parameters).SequenceEqual(trainable)) return buckets;
        buckets = new List<Bucket>();
        cutAt = bucketBytes;
        var current = new List<Parameter>();
        long bytes = 0;
        foreach (var p in trainable)
        {
            current.Add(p);
            bytes += 4L * p.Length;
            if (bytes >= bucketBytes) { buckets.Add(new Bucket(current)); current = new(); bytes = 0; }
        }
        if (current.Count > 0) buckets.Add(new Bucket(current));
        return buckets;
    }
}
