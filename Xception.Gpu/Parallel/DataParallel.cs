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
/// <see cref="ITrainingReplicas"/>, so the trainer drives it without knowing about replicas.
/// </summary>
public sealed partial class DataParallel : ITrainingReplicas, IDisposable
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
        /// <summary>The forward pass, loss, metrics and backward pass of this replica's share (the same as one device's).</summary>
        public ReplicaStep Step { get; } = new(model);
        /// <summary>Host staging buffers for the all-reduces, by length, reused every step.</summary>
        public Dictionary<long, float[]> Flat { get; } = new();
        /// <summary>The gradient buckets (null until first needed, or when buckets are off).</summary>
        public List<Bucket>? Buckets { get; set; }
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
