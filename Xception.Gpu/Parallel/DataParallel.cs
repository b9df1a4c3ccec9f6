using System.Diagnostics;
using Xception.Gpu.Data;
using Xception.Gpu.Graph;
using Xception.Gpu.Training;

namespace Xception.Gpu.Parallel;

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
///
/// Each replica's forward pass, loss, metrics and backward pass are a <see cref="ReplicaStep"/>, the same as
/// one device's; this class adds only the fan-out over the replicas and the reductions between them (share
/// sizes, metrics, gradients in buckets, batch-norm statistics, checksums). It implements
/// <see cref="ITrainingReplicas"/>, so the trainer drives it without knowing about replicas. The pieces it uses:
/// <see cref="ReplicaThreads"/> (the fan-out), <see cref="GradientBuckets"/> (the all-reduce overlapped with the
/// backward pass), <see cref="ReplicaChecksum"/> (the check that replicas hold the same weights).
/// </summary>
public sealed class DataParallel : ITrainingReplicas, IDisposable
{
    readonly List<Replica> replicas = new();
    readonly LocalGroup group;
    readonly ICollective? processes;
    readonly bool syncBatchNorm;
    readonly bool ownsFirst;
    LocalGroup? bucketGroup;
    readonly object bucketGroupLock = new();

    sealed class Replica(Model model, Device device, OptimizerState optimizer)
    {
        public Model Model { get; } = model;
        public Device Device { get; } = device;
        public OptimizerState Optimizer { get; } = optimizer;
        /// <summary>The forward pass, loss, metrics and backward pass of this replica's share (the same as one device's).</summary>
        public ReplicaStep Step { get; } = new(model);
        /// <summary>Host staging buffers for the all-reduces, by length, reused every step.</summary>
        public Dictionary<long, float[]> Flat { get; } = new();
        /// <summary>The gradient all-reduce in buckets, overlapped with the backward pass.</summary>
        public GradientBuckets Buckets { get; } = new();
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

    DataParallel(Model? first, Func<Model> build, Model source, IReadOnlyList<Device> devices, OptimizerSettings optimizer,
        bool syncBatchNorm, ICollective? processes)
    {
        if (devices.Count < 1) throw new ArgumentException("data parallelism needs at least one device", nameof(devices));
        if (first is not null && first.Device != devices[0]) throw new ArgumentException("the first replica's model must be bound to the first device", nameof(first));
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
                    if (to.Count != from.Count) throw new ArgumentException("the replica models differ from the source model", nameof(build));
                    for (int i = 0; i < to.Count; i++) to[i].Set(from[i].Host);
                    m.CopyTrainingModeFrom(source);
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
        if (r.Skipped is not null) throw new ArgumentException(r.Skipped);
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

    /// <summary>Runs <paramref name="work"/> for every replica at once (<see cref="ReplicaThreads"/>) and rethrows the first failure.</summary>
    void RunOnReplicas(Action<int> work)
    {
        if (group.Broken) throw new InvalidOperationException("an earlier replica failure stopped this data-parallel run; start a new one (resume from the last checkpoint)");
        var (failed, error) = ReplicaThreads.Run(Count, work, () =>
        {
            group.Abort(); // release the replicas waiting for this one in an all-reduce
            bucketGroup?.Abort();
        });
        if (error is null) return;
        if (error is RunStoppedException || (Count == 1 && processes is null)) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw();
        throw new ReplicaFailedException(group.Member(failed).Rank, replicas[failed].Device.Id, error);
    }

    /// <summary>
    /// Checks that every replica, in every process, holds the same weights and statistics bit for bit
    /// (<see cref="ReplicaChecksum"/>). A mismatch means the replicas drifted apart: an error
    /// (<see cref="ReplicasDriftedException"/>), never silently averaged away.
    /// </summary>
    public void VerifyIdentical()
    {
        if (GlobalCount == 1) return;
        var gathered = new ulong[Count][];
        RunOnReplicas(rank =>
        {
            var m = replicas[rank].Model;
            m.SyncToHost();
            gathered[rank] = ReplicaChecksum.Gather(group.Member(rank), GlobalCount, ReplicaChecksum.Of(m));
        });
        var all = gathered[0];
        for (int k = 1; k < GlobalCount; k++)
            if (all[k] != all[0])
            {
                int process = k / Count, local = k % Count;
                string where = processes is null ? $"{replicas[local].Device.Id}" : $"process {process}, local replica {local}";
                throw new ReplicasDriftedException($"replica {k} ({where}) drifted from replica 0: its weights differ (checksum {all[k]:x16} vs {all[0]:x16}); the replicas are no longer in sync");
            }
    }

    /// <summary>Gradient buckets in use: their sizes in bytes (empty before the first overlapped step).</summary>
    public IReadOnlyList<long> BucketSizes => replicas[0].Buckets.Sizes;

    /// <summary>
    /// Gradient bucket size for overlapping the all-reduce with the backward pass (PyTorch DDP's default is
    /// 25 MB; see <see cref="GradientBuckets"/>). 0 reduces all gradients in one piece after the backward pass.
    /// Results are the same bits either way (every value is summed over the replicas in rank order). Under MPI with
    /// <c>syncBatchNorm</c> the backward pass itself all-reduces, and MPI is used from one thread at a time, so there
    /// the reduction waits for the backward pass.
    /// </summary>
    public long BucketBytes { get; set; } = 25L << 20;

    bool Overlapped => GlobalCount > 1 && BucketBytes > 0 && !(processes is not null && syncBatchNorm);

    // share: this replica's images, or null when its process stops the run (see StopAll).
    StepResult RunReplica(int rank, TrainBatch? share, float lr, long step, float labelSmoothing)
    {
        var rep = replicas[rank];
        var member = group.Member(rank);
        bool alone = GlobalCount == 1;
        int global;
        StepResult? skipped;
        if (alone) (global, skipped) = (share?.Count ?? -1, share is { Count: 0 } ? StepResult.Skip(0, "an empty batch") : null);
        else (global, skipped) = ExchangeShares(member, share);
        if (skipped is not null) return skipped;
        if (share is null) throw new InvalidOperationException("unreachable: a stopping process never gets past the exchange");

        // Every replica freezes what the first one does (a caller may change it between steps).
        if (rank > 0) rep.Model.CopyTrainingModeFrom(replicas[0].Model);
        var sums = rep.Step.Forward(share, training: true, step, labelSmoothing, syncBatchNorm && !alone ? (member.AllReduceSum, global) : null);
        if (!alone)
        {
            var all = sums.ToArray();
            member.AllReduceSum(all);
            sums = MetricSums.FromArray(all);
        }
        var result = new StepResult(global, sums, true, null);
        if (!double.IsFinite(result.Loss)) return result with { Applied = false };

        if (alone) rep.Step.Backward();
        else
        {
            // From the share's mean loss to its part of the global mean loss.
            rep.Step.ScaleLossGradient(share.Count / (float)global);
            BackwardAndAllReduce(rank);
        }
        rep.Optimizer.Step(lr);
        return result;
    }

    /// <summary>
    /// Every replica learns every share's size: the global batch, whether all have an image, and whether a
    /// process stops the run (a share of -1). Returns the global batch, and the skipped step when a replica
    /// gets no image.
    /// </summary>
    (int Global, StepResult? Skipped) ExchangeShares(ICollective member, TrainBatch? share)
    {
        var counts = new double[GlobalCount];
        counts[member.Rank] = share?.Count ?? -1;
        member.AllReduceSum(counts);
        int stopping = Array.FindIndex(counts, c => c < 0);
        if (stopping >= 0)
        {
            int process = stopping / Count;
            throw new RunStoppedException(share is null
                ? "this process could not load its data; every process stops"
                : $"process {process} could not load its data (its error is printed by it); every process stops") { FailedProcess = process };
        }
        int global = (int)counts.Sum();
        int empty = Array.IndexOf(counts, 0.0);
        return empty < 0 ? (global, null)
            : (global, StepResult.Skip(global, $"a batch of {global} cannot be split over {GlobalCount} replicas (replica {empty} would get no image)"));
    }

    /// <summary>The backward pass and the sum of the gradients over all replicas, overlapped or after it; then the moving statistics' mean.</summary>
    void BackwardAndAllReduce(int rank)
    {
        var rep = replicas[rank];
        var member = group.Member(rank);
        if (Overlapped)
        {
            LocalGroup buckets;
            lock (bucketGroupLock) buckets = bucketGroup ??= new LocalGroup(Count, processes);
            var waited = rep.Buckets.Backward(rep.Model, rep.Step.Executor, rep.Step.LossGradient, BucketBytes, buckets.Member(rank), () =>
            {
                buckets.Abort();
                group.Abort();
            });
            if (rank == 0) { AllReduceTime += waited; AllReduceCalls++; }
        }
        else
        {
            rep.Step.Backward();
            var clock = Stopwatch.StartNew();
            AllReduce(member, rep.Flat, rep.Model.Parameters.Where(p => p.Trainable).Select(p => p.Grad!).ToList(), 1f);
            if (rank == 0) { AllReduceTime += clock.Elapsed; AllReduceCalls++; }
        }
        if (!syncBatchNorm)
            AllReduce(member, rep.Flat, MovedStatistics(rep.Model), 1f / GlobalCount);
    }

    /// <summary>
    /// The moving statistics this step moved: those of batch norm layers that used batch statistics. Layers in
    /// inference mode (frozen) left theirs alone, so they are identical everywhere and averaging them could only
    /// round them differently.
    /// </summary>
    static List<Tensor<float>> MovedStatistics(Model m) =>
        m.Layers.Where(l => l.Parameters.Any(p => !p.Optimizable) && m.UsesBatchStatistics(l))
            .SelectMany(l => l.Parameters.Where(p => !p.Optimizable)).Select(p => p.Value!).ToList();

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
        var sums = acc.Sums.ToArray();
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

    public void Dispose()
    {
        for (int k = 0; k < replicas.Count; k++)
        {
            var r = replicas[k];
            r.Step.Dispose();
            r.Optimizer.Dispose();
            if (k > 0 || ownsFirst) r.Model.Dispose();
        }
        replicas.Clear();
    }
}
