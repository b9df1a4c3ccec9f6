using Xception.Gpu.Graph;
using Xception.Gpu.Ops;
using Xception.Gpu.Training;

namespace Xception.Gpu.Parallel;

/// <summary>
/// Synchronous data-parallel SGD in one process: one model replica per device, each batch split evenly over
/// the replicas (the first count mod N get one sample more), forward and backward on all replicas at once (a
/// thread each), gradients summed by an all-reduce, and the same optimizer step on every replica.
///
/// Every replica scales its loss gradient by its share n_i / N before the backward pass, so its gradients
/// are its part of the gradient of the global mean loss and the all-reduce is a plain sum: uneven shares are
/// weighted exactly. Batch norm: by default each replica normalizes with its own share's statistics (as the
/// paper's setup did; the moving statistics are then averaged over the replicas after each step, as
/// TensorFlow's MirroredStrategy reads them); with <c>syncBatchNorm</c> the statistics are the global
/// batch's, all-reduced inside the forward and backward passes, so N replicas compute what one device would.
/// </summary>
public sealed class DataParallel : IDisposable
{
    readonly List<Replica> replicas = new();
    readonly LocalGroup group;
    readonly bool syncBatchNorm;

    sealed record Replica(Model Model, Device Device, OptimizerState Optimizer, Dictionary<int, (Tensor<float> X, Tensor<float> Grad, Tensor<int> Labels)> Buffers);

    /// <param name="build">makes one replica's model (same configuration each call)</param>
    /// <param name="source">the weights every replica starts from (host values)</param>
    /// <param name="devices">one device per replica (several CPU accelerators may stand side by side)</param>
    /// <param name="optimizer">the optimizer every replica runs, with identical state</param>
    /// <param name="syncBatchNorm">batch statistics over the global batch instead of each replica's share</param>
    public DataParallel(Func<Model> build, Model source, IReadOnlyList<Device> devices, OptimizerSettings optimizer, bool syncBatchNorm)
    {
        if (devices.Count < 1) throw new XceptionException("data parallelism needs at least one device");
        this.syncBatchNorm = syncBatchNorm;
        group = new LocalGroup(devices.Count);
        source.SyncToHost();
        var from = source.Parameters.ToList();
        foreach (var d in devices)
        {
            var m = build();
            var to = m.Parameters.ToList();
            if (to.Count != from.Count) throw new XceptionException("replica models differ from the source model");
            for (int i = 0; i < to.Count; i++) to[i].Set(from[i].Host);
            m.Bind(d);
            replicas.Add(new Replica(m, d, new OptimizerState(m, optimizer), new()));
        }
    }

    public int Count => replicas.Count;
    public Model ReplicaModel(int i) => replicas[i].Model;

    /// <summary>Sizes of each replica's share of a batch of <paramref name="count"/>.</summary>
    public int[] Shares(int count) => Enumerable.Range(0, Count).Select(i => count / Count + (i < count % Count ? 1 : 0)).ToArray();

    /// <summary>One synchronous step on a batch (NHWC X of <paramref name="count"/> images); returns the mean loss.</summary>
    public double Step(float[] x, int[] labels, int count, float lr, long step)
    {
        if (count < Count)
            throw new XceptionException($"a batch of {count} cannot be split over {Count} replicas: each needs at least one image");
        var shares = Shares(count);
        int perImage = replicas[0].Model.Input.OutputShape.Aggregate(1, (a, b) => a * b);
        var losses = new double[Count];
        var errors = new Exception?[Count];
        var threads = new Thread[Count];
        for (int r = 0; r < Count; r++)
        {
            int rank = r, start = shares.Take(r).Sum();
            threads[r] = new Thread(() =>
            {
                try
                {
                    losses[rank] = RunReplica(rank, x.AsSpan(start * perImage, shares[rank] * perImage).ToArray(),
                        labels.AsSpan(start, shares[rank]).ToArray(), count, lr, step) * shares[rank];
                }
                catch (Exception e)
                {
                    errors[rank] = e;
                    group.Abort(); // release the replicas waiting for this one in an all-reduce
                }
            }) { IsBackground = true, Name = $"replica {rank}" };
            threads[r].Start();
        }
        foreach (var t in threads) t.Join();
        // The first failure is the cause; the others are replicas released by the abort.
        int failed = Array.FindIndex(errors, e => e is not null && !e.Message.StartsWith("another replica failed"));
        if (failed < 0) failed = Array.FindIndex(errors, e => e is not null);
        if (failed >= 0)
            throw new XceptionException($"replica {failed} on {replicas[failed].Device.Id} failed: {errors[failed]!.Message}; the run stops", errors[failed]);
        return losses.Sum() / count;
    }

    double RunReplica(int rank, float[] x, int[] labels, int global, float lr, long step)
    {
        var (model, d, optimizer, buffers) = replicas[rank];
        int n = labels.Length, classes = model.Output.OutputShape[0];
        if (!buffers.TryGetValue(n, out var buf))
            buffers[n] = buf = (Tensor.Zeros(d, [n, .. model.Input.OutputShape]), Tensor.Zeros(d, n, classes), Tensor.Zeros<int>(d, n));
        buf.X.CopyFrom(x);
        var ex = model.Executor(n, training: true);
        ex.Step = step;
        ex.SyncBatchNorm = syncBatchNorm ? (group.Member(rank), global) : null;
        var logits = ex.Forward(buf.X);
        double loss = Loss.On(d).SoftmaxCrossEntropy(logits, labels, buf.Labels, buf.Grad);
        // From the share's mean loss to its part of the global mean loss.
        var g = buf.Grad.ToArray();
        float share = n / (float)global;
        for (int i = 0; i < g.Length; i++) g[i] *= share;
        buf.Grad.CopyFrom(g);
        ex.Backward(buf.Grad);

        var member = group.Member(rank);
        var trainable = model.Parameters.Where(p => p.Trainable).ToList();
        AllReduce(member, trainable.Select(p => p.Grad!).ToList(), 1f);
        if (!syncBatchNorm)
            AllReduce(member, model.Parameters.Where(p => !p.Trainable).Select(p => p.Value!).ToList(), 1f / Count);
        optimizer.Step(lr);
        return loss;
    }

    /// <summary>Sums tensors over the replicas (one flat buffer, one all-reduce), then scales them.</summary>
    static void AllReduce(ICollective c, List<Tensor<float>> tensors, float scale)
    {
        var flat = new float[tensors.Sum(t => (long)t.Length)];
        long at = 0;
        foreach (var t in tensors) { t.ToArray().CopyTo(flat, at); at += t.Length; }
        c.AllReduceSum(flat);
        if (scale != 1f) for (long i = 0; i < flat.Length; i++) flat[i] *= scale;
        at = 0;
        foreach (var t in tensors) { t.CopyFrom(flat.AsSpan((int)at, t.Length)); at += t.Length; }
    }

    /// <summary>
    /// Checks that every replica holds the same weights and statistics, bit for bit (a mismatch means the
    /// replicas drifted apart: an error, never silently averaged away).
    /// </summary>
    public void VerifyIdentical()
    {
        foreach (var r in replicas) r.Model.SyncToHost();
        var first = replicas[0].Model.Parameters.ToList();
        for (int k = 1; k < Count; k++)
        {
            var other = replicas[k].Model.Parameters.ToList();
            for (int i = 0; i < first.Count; i++)
                if (!first[i].Host.AsSpan().SequenceEqual(other[i].Host))
                    throw new XceptionException($"replica {k} ({replicas[k].Device.Id}) drifted from replica 0: parameter {i} ({first[i].Name}) differs");
        }
    }

    public void Dispose()
    {
        foreach (var r in replicas)
        {
            foreach (var (x, g, l) in r.Buffers.Values) { x.Dispose(); g.Dispose(); l.Dispose(); }
            r.Optimizer.Dispose();
            r.Model.Dispose();
        }
    }
}
