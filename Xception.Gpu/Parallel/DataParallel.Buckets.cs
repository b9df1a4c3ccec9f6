using System.Diagnostics;
using Xception.Gpu.Graph;

namespace Xception.Gpu.Parallel;

/// <summary>The gradient all-reduce in buckets, overlapped with the backward pass.</summary>
public sealed partial class DataParallel
{
    /// <summary>Consecutive trainable parameters (in reverse layer order) all-reduced together.</summary>
    sealed class Bucket(List<Parameter> parameters)
    {
        public List<Parameter> Parameters { get; } = parameters;
        public float[] Host { get; } = new float[parameters.Sum(p => (long)p.Length)];
        public int Pending;
    }

    /// <summary>Gradient buckets in use: their count and sizes in bytes (empty before the first overlapped step).</summary>
    public IReadOnlyList<long> BucketSizes => replicas[0].Buckets?.Select(b => b.Host.LongLength * 4).ToList() ?? [];

    /// <summary>
    /// Gradient bucket size for overlapping the all-reduce with the backward pass (PyTorch DDP's default is
    /// 25 MB): as soon as the layers behind a bucket's parameters are differentiated, the bucket is copied to
    /// the host and summed on a separate thread while the backward pass goes on. 0 reduces all gradients in
    /// one piece after the backward pass. Results are the same bits either way (every value is summed over the
    /// replicas in rank order). Under MPI with <c>syncBatchNorm</c> the backward pass itself all-reduces, and
    /// MPI is used from one thread at a time, so there the reduction waits for the backward pass.
    /// </summary>
    public long BucketBytes { get; set; } = 25L << 20;

    bool Overlapped => GlobalCount > 1 && BucketBytes > 0 && !(processes is not null && syncBatchNorm);

    /// <summary>
    /// The backward pass with the gradient all-reduce overlapped: a bucket is staged on the host as soon as its
    /// layers are done and summed by this replica's reducer thread (buckets become ready in the same order on
    /// every replica, so the collectives match); after the backward pass the sums are copied back.
    /// </summary>
    void BackwardOverlapped(int rank, Executor ex, Tensor<float> outputGrad)
    {
        var rep = replicas[rank];
        // Freezing or unfreezing layers between steps changes which gradients exist: cut the buckets again.
        var trainable = rep.Model.Layers.Reverse().SelectMany(l => l.Parameters.Where(p => p.Trainable)).ToList();
        if (rep.Buckets is not null && !rep.Buckets.SelectMany(b => b.Parameters).SequenceEqual(trainable)) rep.Buckets = null;
        if (rep.Buckets is null)
        {
            // Every replica cuts the same buckets: the same model, walked in the same order.
            rep.Buckets = new List<Bucket>();
            var current = new List<Parameter>();
            long bytes = 0;
            foreach (var layer in rep.Model.Layers.Reverse())
                foreach (var p in layer.Parameters.Where(p => p.Trainable))
                {
                    current.Add(p); bytes += 4L * p.Length;
                    if (bytes >= BucketBytes) { rep.Buckets.Add(new Bucket(current)); current = new(); bytes = 0; }
                }
            if (current.Count > 0) rep.Buckets.Add(new Bucket(current));
        }
        lock (replicas) bucketGroup ??= new LocalGroup(Count, processes);
        var member = bucketGroup.Member(rank);
        var buckets = rep.Buckets;
        var owner = new Dictionary<Parameter, Bucket>();
        foreach (var b in buckets)
        {
            b.Pending = b.Parameters.Count;
            foreach (var p in b.Parameters) owner[p] = b;
        }
        using var ready = new System.Collections.Concurrent.BlockingCollection<Bucket>();
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
                bucketGroup.Abort();
                group.Abort();
            }
        }) { IsBackground = true, Name = $"replica {rank} all-reduce" };
        reducer.Start();
        ex.AfterLayerBackward = layer =>
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
            ex.Backward(outputGrad);
        }
        finally
        {
            ex.AfterLayerBackward = null;
            ready.CompleteAdding();
            clock = Stopwatch.StartNew();
            reducer.Join();
        }
        if (reduceError is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(reduceError).Throw();
        if (buckets.Any(b => b.Pending > 0))
            throw new XceptionException("internal: a gradient bucket was never completed by the backward pass");
        foreach (var b in buckets)
        {
            long at = 0;
            foreach (var q in b.Parameters) { q.Grad!.CopyFrom(b.Host.AsSpan((int)at, q.Length)); at += q.Length; }
        }
        if (rank == 0) { AllReduceTime += clock.Elapsed; AllReduceCalls++; }
    }
}
