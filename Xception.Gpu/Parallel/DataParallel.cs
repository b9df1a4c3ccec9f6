using System.Diagnostics;
using System.Runtime.InteropServices;
using Xception.Gpu.Data;
using Xception.Gpu.Graph;
using Xception.Gpu.Ops;
using Xception.Gpu.Training;

namespace Xception.Gpu.Parallel;

/// <summary>What one synchronous step did, the same on every replica and every process.</summary>
/// <param name="GlobalCount">images in the step over all replicas</param>
/// <param name="Sums">the step's metric sums over all replicas (see <see cref="Evaluation.Accumulator.Save"/>)</param>
/// <param name="Applied">false when the step was skipped: no replica changed</param>
/// <param name="Skipped">why it was skipped (null when applied, or when the loss was not finite)</param>
public sealed record StepResult(int GlobalCount, double[] Sums, bool Applied, string? Skipped)
{
    /// <summary>The mean loss over the global batch.</summary>
    public double Loss => Sums[0] > 0 ? Sums[1] / Sums[0] : double.NaN;
}

/// <summary>
/// A process of the run could not go on (its data failed to load) and told the others at the start of a step;
/// every process throws this at the same point, so all stop cleanly, with the last checkpoint written whole.
/// On the process that failed, <see cref="Exception.InnerException"/> is the cause.
/// </summary>
public sealed class RunStoppedException(string message, Exception? inner = null) : XceptionException(message, inner)
{
    /// <summary>The first process that failed.</summary>
    public int FailedProcess { get; init; }
}

/// <summary>A replica failed; the run stops. <see cref="Exception.InnerException"/> is the replica's error.</summary>
public sealed class ReplicaFailedException(int rank, string device, Exception inner)
    : XceptionException($"replica {rank} on {device} failed: {inner.Message}; the run stops", inner)
{
    public int Rank { get; } = rank;
}

/// <summary>
/// Synchronous data-parallel SGD: one model replica per device, each batch split evenly over the replicas
/// (the first count mod N get one sample more), forward and backward on all replicas at once (a thread each),
/// gradients summed by an all-reduce, and the same optimizer step on every replica. With a process
/// collective (MPI), this object holds the replicas of one process and the all-reduces span all processes.
///
/// Every replica scales its loss gradient by its share n_i / N before the backward pass, so its gradients
/// are its part of the gradient of the global mean loss and the all-reduce is a plain sum: uneven shares are
/// weighted exactly. Batch norm: by default each replica normalizes with its own share's statistics (as the
/// paper's setup did; the moving statistics are then averaged over the replicas after each step, as
/// TensorFlow's MirroredStrategy reads them); with <c>syncBatchNorm</c> the statistics are the global
/// batch's, all-reduced inside the forward and backward passes, so N replicas compute what one device would.
///
/// With one replica and no processes this is plain single-device training: no all-reduce, no copies.
/// </summary>
public sealed class DataParallel : IDisposable
{
    readonly List<Replica> replicas = new();
    readonly LocalGroup group;
    readonly ICollective? processes;
    readonly bool syncBatchNorm;
    readonly bool ownsFirst;
    LocalGroup? bucketGroup;

    sealed class Replica(Model model, Device device, OptimizerState optimizer)
    {
        public Model Model { get; } = model;
        public Device Device { get; } = device;
        public OptimizerState Optimizer { get; } = optimizer;
        public Dictionary<int, (Tensor<float> X, Tensor<float> Grad, Tensor<int> Labels, Tensor<float> Targets)> Buffers { get; } = new();
        /// <summary>Host staging buffers for the all-reduces, by length, reused every step.</summary>
        public Dictionary<long, float[]> Flat { get; } = new();
        /// <summary>The gradient buckets (null until first needed, or when buckets are off).</summary>
        public List<Bucket>? Buckets { get; set; }
    }

    /// <summary>Consecutive trainable parameters (in reverse layer order) all-reduced together.</summary>
    sealed class Bucket(List<Parameter> parameters)
    {
        public List<Parameter> Parameters { get; } = parameters;
        public float[] Host { get; } = new float[parameters.Sum(p => (long)p.Length)];
        public int Pending;
    }

    /// <summary>Replicas built from host weights: every replica is made by <paramref name="build"/> and given <paramref name="source"/>'s values.</summary>
    /// <param name="build">makes one replica's model (same configuration each call)</param>
    /// <param name="source">the weights every replica starts from (host values)</param>
    /// <param name="devices">one device per replica (several CPU accelerators may stand side by side)</param>
    /// <param name="optimizer">the optimizer every replica runs, with identical state</param>
    /// <param name="syncBatchNorm">batch statistics over the global batch instead of each replica's share</param>
    /// <param name="processes">the other processes of the run (MPI), each holding as many replicas as this one</param>
    public DataParallel(Func<Model> build, Model source, IReadOnlyList<Device> devices, OptimizerSettings optimizer,
        bool syncBatchNorm, ICollective? processes = null)
        : this(null, build, source, devices, optimizer, syncBatchNorm, processes) { }

    /// <summary>
    /// Replicas around a model already on <paramref name="devices"/>[0] (the first replica; not disposed with
    /// this object); the others are made by <paramref name="build"/> and start from its current values.
    /// </summary>
    public static DataParallel Around(Model first, Func<Model> build, IReadOnlyList<Device> devices, OptimizerSettings optimizer,
        bool syncBatchNorm = false, ICollective? processes = null) =>
        new(first, build, first, devices, optimizer, syncBatchNorm, processes);

    /// <summary>Gradient buckets in use: their count and sizes in bytes (empty before the first overlapped step).</summary>
    public IReadOnlyList<long> BucketSizes => replicas[0].Buckets?.Select(b => b.Host.LongLength * 4).ToList() ?? [];

    /// <summary>One bound model on its own device: single-device training through the same interface.</summary>
    public static DataParallel Single(Model bound, OptimizerSettings optimizer) =>
        Around(bound, () => throw new InvalidOperationException("one replica"), [bound.Device ?? throw new XceptionException("bind the model to a device before training")], optimizer);

    DataParallel(Model? first, Func<Model> build, Model source, IReadOnlyList<Device> devices, OptimizerSettings optimizer,
        bool syncBatchNorm, ICollective? processes)
    {
        if (devices.Count < 1) throw new XceptionException("data parallelism needs at least one device");
        if (first is not null && first.Device != devices[0]) throw new XceptionException("the first replica's model must be bound to the first device");
        this.syncBatchNorm = syncBatchNorm;
        this.processes = processes;
        ownsFirst = first is null;
        group = new LocalGroup(devices.Count, processes);
        source.SyncToHost();
        var from = source.Parameters.ToList();
        try
        {
            for (int k = 0; k < devices.Count; k++)
            {
                var m = k == 0 && first is not null ? first : build();
                if (m != first)
                {
                    var to = m.Parameters.ToList();
                    if (to.Count != from.Count) throw new XceptionException("replica models differ from the source model");
                    for (int i = 0; i < to.Count; i++) to[i].Set(from[i].Host);
                    m.Bind(devices[k]);
                }
                replicas.Add(new Replica(m, devices[k], new OptimizerState(m, optimizer)));
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Replicas in this process.</summary>
    public int Count => replicas.Count;

    /// <summary>Replicas in the whole run.</summary>
    public int GlobalCount => group.GlobalSize;

    /// <summary>This process's index among the run's processes (0 without MPI).</summary>
    public int ProcessRank => processes?.Rank ?? 0;

    /// <summary>True in the process that writes checkpoints and logs (rank 0, or the only one).</summary>
    public bool IsRoot => ProcessRank == 0;

    /// <summary>The collective of the run's processes, or null in a one-process run.</summary>
    public ICollective? Processes => processes;

    /// <summary>The first replica: what checkpoints save and evaluation runs.</summary>
    public Model Model => replicas[0].Model;

    /// <summary>The first replica's optimizer state (every replica's is the same).</summary>
    public OptimizerState Optimizer => replicas[0].Optimizer;

    public Model ReplicaModel(int i) => replicas[i].Model;
    public Device ReplicaDevice(int i) => replicas[i].Device;

    /// <summary>This process's part of every batch (for the data loader), or null when it takes whole batches.</summary>
    public BatchShard? Shard => processes is null ? null : new BatchShard(ProcessRank * Count, Count, GlobalCount);

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
    /// Wall time the first replica spent on the gradient all-reduce that was not hidden behind its backward
    /// pass (copies and waiting for slower replicas included), and how many steps.
    /// </summary>
    public TimeSpan AllReduceTime { get; private set; }
    public long AllReduceCalls { get; private set; }

    /// <summary>Sizes of each replica's share of a batch of <paramref name="count"/>.</summary>
    public int[] Shares(int count) => BatchShard.Shares(count, Count);

    /// <summary>One synchronous step on a batch of labels (NHWC X of <paramref name="count"/> images); returns the mean loss.</summary>
    public double Step(float[] x, int[] labels, int count, float lr, long step)
    {
        var r = Step(new TrainBatch(x, count, labels, null), lr, step);
        if (r.Skipped is not null) throw new XceptionException(r.Skipped);
        return r.Loss;
    }

    /// <summary>
    /// One synchronous step on this process's part of a batch: every replica takes its share, and the step is
    /// applied everywhere or nowhere. It is skipped (all replicas unchanged) when a replica would get no image,
    /// and when the loss is not finite (the caller decides what to do; the weights are still the last good ones).
    /// </summary>
    public StepResult Step(TrainBatch batch, float lr, long step, float labelSmoothing = 0f)
    {
        var shares = Shares(batch.Count);
        var results = new StepResult[Count];
        int perImage = Model.Input.OutputShape.Aggregate(1, (a, b) => a * b);
        RunOnReplicas(rank =>
        {
            int start = shares.Take(rank).Sum();
            results[rank] = RunReplica(rank, Slice(batch, perImage, start, shares[rank]), lr, step, labelSmoothing);
        });
        return results[0];
    }

    /// <summary>
    /// Called instead of <see cref="Step(TrainBatch, float, long, float)"/> by a process that cannot take its
    /// part of the step (its batch failed to load): the other processes learn it in the step's first exchange,
    /// and every process throws <see cref="RunStoppedException"/> there. Without other processes, rethrows
    /// <paramref name="cause"/>.
    /// </summary>
    public void StopAll(Exception cause)
    {
        if (processes is null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(cause).Throw();
        try
        {
            RunOnReplicas(rank => RunReplica(rank, null, 0f, 0, 0f));
        }
        catch (RunStoppedException)
        {
            throw new RunStoppedException(cause.Message, cause) { FailedProcess = ProcessRank };
        }
        throw new InvalidOperationException("unreachable: the exchange always stops the run");
    }

    /// <summary>Samples [start, start + n) of a batch.</summary>
    static TrainBatch Slice(TrainBatch b, int per, int start, int n)
    {
        if (start == 0 && n == b.Count) return b;
        int classes = b.Targets is null ? 0 : b.Targets.Length / b.Count;
        return new TrainBatch(b.X.AsSpan(start * per, n * per).ToArray(), n,
            b.Labels?.AsSpan(start, n).ToArray(), b.Targets?.AsSpan(start * classes, n * classes).ToArray());
    }

    /// <summary>Runs <paramref name="work"/> for every replica at once (the first on the calling thread) and rethrows the first failure.</summary>
    void RunOnReplicas(Action<int> work)
    {
        if (group.Broken) throw new XceptionException("an earlier replica failure stopped this data-parallel run; start a new one (resume from the last checkpoint)");
        var errors = new Exception?[Count];
        void Guarded(int rank)
        {
            try { work(rank); }
            catch (Exception e)
            {
                errors[rank] = e;
                group.Abort(); // release the replicas waiting for this one in an all-reduce
                bucketGroup?.Abort();
            }
        }
        var threads = new Thread[Count - 1];
        for (int r = 1; r < Count; r++)
        {
            int rank = r;
            threads[r - 1] = new Thread(() => Guarded(rank)) { IsBackground = true, Name = $"replica {rank}" };
            threads[r - 1].Start();
        }
        Guarded(0);
        foreach (var t in threads) t.Join();
        // The first real failure is the cause; the others are replicas released by the abort.
        int failed = Array.FindIndex(errors, e => e is not null and not ReplicaAbortedException);
        if (failed < 0) failed = Array.FindIndex(errors, e => e is not null);
        if (failed < 0) return;
        var error = errors[failed]!;
        if (error is RunStoppedException) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw();
        if (Count == 1 && processes is null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw();
        throw new ReplicaFailedException(group.Member(failed).Rank, replicas[failed].Device.Id, error);
    }

    /// <param name="share">this replica's images, or null when its process stops the run (see <see cref="StopAll"/>)</param>
    StepResult RunReplica(int rank, TrainBatch? share, float lr, long step, float labelSmoothing)
    {
        var rep = replicas[rank];
        var (model, d) = (rep.Model, rep.Device);
        var member = group.Member(rank);
        int n = share?.Count ?? -1, classes = model.Output.OutputShape[0];
        bool alone = GlobalCount == 1;

        // Every replica learns every share's size: the global batch, whether all have an image, and whether
        // a process stops the run (a share of -1).
        int global = n;
        if (!alone)
        {
            var counts = new double[GlobalCount];
            counts[member.Rank] = n;
            member.AllReduceSum(counts);
            int stopping = Array.FindIndex(counts, c => c < 0);
            if (stopping >= 0)
            {
                int process = stopping / Count;
                throw new RunStoppedException(share is null
                    ? "this process could not load its data; every process stops"
                    : $"process {process} could not load its data (its error is printed by it); every process stops") { FailedProcess = process };
            }
            global = (int)counts.Sum();
            int empty = Array.IndexOf(counts, 0.0);
            if (empty >= 0)
                return new StepResult(global, new double[6], false,
                    $"a batch of {global} cannot be split over {GlobalCount} replicas (replica {empty} would get no image)");
        }
        else if (n == 0) return new StepResult(0, new double[6], false, "an empty batch");

        share = share!;
        if (!rep.Buffers.TryGetValue(n, out var buf))
            rep.Buffers[n] = buf = (Tensor.Zeros(d, [n, .. model.Input.OutputShape]), Tensor.Zeros(d, n, classes),
                Tensor.Zeros<int>(d, n), Tensor.Zeros(d, n, classes));
        buf.X.CopyFrom(share.X.AsSpan(0, buf.X.Length));
        var ex = model.Executor(n, training: true);
        ex.Step = step;
        ex.SyncBatchNorm = syncBatchNorm && !alone ? (member, global) : null;
        var logits = ex.Forward(buf.X);
        double loss;
        if (share.Labels is null)
        {
            buf.Targets.CopyFrom(share.Targets!);
            loss = Loss.On(d).SigmoidCrossEntropy(logits, buf.Targets, buf.Grad);
        }
        else loss = Loss.On(d).SoftmaxCrossEntropy(logits, share.Labels, buf.Labels, buf.Grad, labelSmoothing);
        var acc = new Evaluation.Accumulator(share.Labels is null);
        acc.Add(share, logits.ToArray(), loss, classes);
        var sums = acc.Save();
        if (!alone) member.AllReduceSum(sums);
        var result = new StepResult(global, sums, true, null);
        if (!double.IsFinite(result.Loss)) return result with { Applied = false };

        if (!alone)
        {
            // From the share's mean loss to its part of the global mean loss.
            var g = buf.Grad.ToArray();
            float part = n / (float)global;
            for (int i = 0; i < g.Length; i++) g[i] *= part;
            buf.Grad.CopyFrom(g);
        }
        if (alone) ex.Backward(buf.Grad);
        else if (Overlapped) BackwardOverlapped(rank, ex, buf.Grad);
        else
        {
            ex.Backward(buf.Grad);
            var clock = Stopwatch.StartNew();
            AllReduce(member, rep.Flat, model.Parameters.Where(p => p.Trainable).Select(p => p.Grad!).ToList(), 1f);
            if (rank == 0) { AllReduceTime += clock.Elapsed; AllReduceCalls++; }
        }
        if (!alone)
        {
            if (!syncBatchNorm)
                AllReduce(member, rep.Flat, model.Parameters.Where(p => !p.Trainable).Select(p => p.Value!).ToList(), 1f / GlobalCount);
        }
        rep.Optimizer.Step(lr);
        return result;
    }

    /// <summary>
    /// The backward pass with the gradient all-reduce overlapped: a bucket is staged on the host as soon as its
    /// layers are done and summed by this replica's reducer thread (buckets become ready in the same order on
    /// every replica, so the collectives match); after the backward pass the sums are copied back.
    /// </summary>
    void BackwardOverlapped(int rank, Executor ex, Tensor<float> outputGrad)
    {
        var rep = replicas[rank];
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

    /// <summary>Sums tensors over the replicas (one flat buffer, one all-reduce), then scales them.</summary>
    static void AllReduce(ICollective c, Dictionary<long, float[]> staging, List<Tensor<float>> tensors, float scale)
    {
        long length = tensors.Sum(t => (long)t.Length);
        if (!staging.TryGetValue(length, out var flat)) staging[length] = flat = new float[length];
        long at = 0;
        foreach (var t in tensors) { t.CopyTo(flat.AsSpan((int)at, t.Length)); at += t.Length; }
        c.AllReduceSum(flat);
        if (scale != 1f) for (long i = 0; i < flat.Length; i++) flat[i] *= scale;
        at = 0;
        foreach (var t in tensors) { t.CopyFrom(flat.AsSpan((int)at, t.Length)); at += t.Length; }
    }

    /// <summary>
    /// Metrics of the first replica over this process's validation batches, summed over the processes (each
    /// evaluates its shard of every batch), so every process gets the whole set's result.
    /// </summary>
    public EvalResult Evaluate(IEnumerable<TrainBatch> batches, int classes, bool multiLabel, float labelSmoothing = 0f)
    {
        var acc = Evaluation.Accumulate(Model, batches, classes, multiLabel, labelSmoothing);
        if (processes is null) return acc.Result();
        var sums = acc.Save();
        processes.AllReduceSum(sums);
        acc.Load(sums);
        return acc.Result();
    }

    /// <summary>
    /// Copies the first replica's weights, statistics and optimizer state to the others (after the first
    /// was restored from a checkpoint).
    /// </summary>
    public void CopyFirstToOthers()
    {
        if (Count == 1) return;
        Model.SyncToHost();
        var from = Model.Parameters.ToList();
        var state = Optimizer.Export().ToDictionary(t => t.Name);
        foreach (var r in replicas.Skip(1))
        {
            var to = r.Model.Parameters.ToList();
            for (int i = 0; i < to.Count; i++) to[i].Set(from[i].Host);
            r.Optimizer.Import(state, "replica 0");
        }
    }

    /// <summary>
    /// Checks that every replica, in every process, holds the same weights and statistics bit for bit: each
    /// hashes its own (64-bit FNV-1a over the float bits) and the hashes are gathered by an all-reduce. A
    /// mismatch means the replicas drifted apart: an error, never silently averaged away.
    /// </summary>
    public void VerifyIdentical()
    {
        if (GlobalCount == 1) return;
        var gathered = new double[Count][];
        RunOnReplicas(rank =>
        {
            var m = replicas[rank].Model;
            m.SyncToHost();
            ulong h = Checksum(m);
            var member = group.Member(rank);
            var slots = new double[2 * GlobalCount];
            slots[2 * member.Rank] = h >> 32;
            slots[2 * member.Rank + 1] = h & 0xffffffff;
            member.AllReduceSum(slots);
            gathered[rank] = slots;
        });
        var all = gathered[0];
        for (int k = 1; k < GlobalCount; k++)
            if (all[2 * k] != all[0] || all[2 * k + 1] != all[1])
            {
                int process = k / Count, local = k % Count;
                string where = processes is null ? $"{replicas[local].Device.Id}" : $"process {process}, local replica {local}";
                throw new XceptionException($"replica {k} ({where}) drifted from replica 0: its weights differ (checksum {Hex(all, k)} vs {Hex(all, 0)}); the replicas are no longer in sync");
            }

        static string Hex(double[] s, int k) => $"{(ulong)s[2 * k] << 32 | (ulong)s[2 * k + 1]:x16}";
    }

    /// <summary>64-bit FNV-1a over the bits of every parameter's host values.</summary>
    public static ulong Checksum(Model m)
    {
        ulong h = 14695981039346656037UL;
        foreach (var p in m.Parameters)
            foreach (uint bits in MemoryMarshal.Cast<float, uint>(p.Host))
            {
                h ^= bits;
                h *= 1099511628211UL;
            }
        return h;
    }

    public void Dispose()
    {
        for (int k = 0; k < replicas.Count; k++)
        {
            var r = replicas[k];
            foreach (var (x, g, l, t) in r.Buffers.Values) { x.Dispose(); g.Dispose(); l.Dispose(); t.Dispose(); }
            r.Buffers.Clear();
            r.Optimizer.Dispose();
            if (k > 0 || ownsFirst) r.Model.Dispose();
        }
        replicas.Clear();
    }
}
