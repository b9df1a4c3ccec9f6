namespace Xception.Gpu.Serving;

/// <summary>
/// What a served model has done, with the meanings of NVIDIA Triton's statistics: requests that succeeded and
/// failed (by <see cref="FailureReason"/>) with their cumulative duration, inferences (images) and executions
/// (device batches), so that the average batch is Inferences / Executions; the cumulative time requests spent
/// queued and in compute (each request counts its batch's compute time); per batch size, the executions and
/// their time; histograms of request duration (seconds) and batch size (images). Thread-safe: the batcher
/// records queue and compute, whoever answers the request records its outcome.
/// </summary>
public sealed class ModelStats
{
    long success, successNs, inferences, executions, queueNs, computeNs, pending, lastInferenceMs;
    readonly long[] failures = new long[Enum.GetValues<FailureReason>().Length];
    readonly long[] failureNs = new long[Enum.GetValues<FailureReason>().Length];
    readonly long[] batchExecutions, batchNs;

    /// <param name="maxBatchSize">the largest batch the model runs (the per-batch-size table's length)</param>
    public ModelStats(int maxBatchSize)
    {
        batchExecutions = new long[maxBatchSize + 1];
        batchNs = new long[maxBatchSize + 1];
        var sizes = new List<double>();
        for (int b = 1; b < maxBatchSize; b *= 2) sizes.Add(b);
        sizes.Add(maxBatchSize);
        BatchSize = new Histogram(sizes);
    }

    /// <summary>Request duration, arrival to answer, in seconds.</summary>
    public Histogram RequestSeconds { get; } = new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]);

    /// <summary>Images per execution.</summary>
    public Histogram BatchSize { get; }

    public long Success => Interlocked.Read(ref success);
    public long SuccessNanoseconds => Interlocked.Read(ref successNs);
    public long Failures(FailureReason reason) => Interlocked.Read(ref failures[(int)reason]);
    public long FailureNanoseconds(FailureReason reason) => Interlocked.Read(ref failureNs[(int)reason]);
    public long Inferences => Interlocked.Read(ref inferences);
    public long Executions => Interlocked.Read(ref executions);
    public long QueueNanoseconds => Interlocked.Read(ref queueNs);
    public long ComputeNanoseconds => Interlocked.Read(ref computeNs);

    /// <summary>Requests accepted and not yet answered by the batcher (queued or in a running batch).</summary>
    public long Pending => Interlocked.Read(ref pending);

    /// <summary>When the last execution ended, in milliseconds since the Unix epoch; 0 before the first.</summary>
    public long LastInferenceMilliseconds => Interlocked.Read(ref lastInferenceMs);

    /// <summary>Executions and their cumulative compute time for one batch size (1 to the max batch size).</summary>
    public (long Executions, long Nanoseconds) ByBatchSize(int size) =>
        size >= 1 && size < batchExecutions.Length ? (Interlocked.Read(ref batchExecutions[size]), Interlocked.Read(ref batchNs[size])) : (0, 0);

    public int MaxBatchSize => batchExecutions.Length - 1;

    public void RecordSuccess(TimeSpan duration)
    {
        Interlocked.Increment(ref success);
        Interlocked.Add(ref successNs, Nanoseconds(duration));
        RequestSeconds.Observe(duration.TotalSeconds);
    }

    public void RecordFailure(FailureReason reason, TimeSpan duration)
    {
        Interlocked.Increment(ref failures[(int)reason]);
        Interlocked.Add(ref failureNs[(int)reason], Nanoseconds(duration));
        RequestSeconds.Observe(duration.TotalSeconds);
    }

    internal void Enqueued() => Interlocked.Increment(ref pending);
    internal void Dequeued() => Interlocked.Decrement(ref pending);
    internal void Queued(TimeSpan waited) => Interlocked.Add(ref queueNs, Nanoseconds(waited));

    /// <summary>One execution of <paramref name="images"/> images for <paramref name="requests"/> requests.</summary>
    internal void Executed(int images, int requests, TimeSpan compute)
    {
        long ns = Nanoseconds(compute);
        Interlocked.Increment(ref executions);
        Interlocked.Add(ref inferences, images);
        Interlocked.Add(ref computeNs, ns * requests);
        if (images < batchExecutions.Length)
        {
            Interlocked.Increment(ref batchExecutions[images]);
            Interlocked.Add(ref batchNs[images], ns);
        }
        BatchSize.Observe(images);
        Interlocked.Exchange(ref lastInferenceMs, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
    }

    static long Nanoseconds(TimeSpan t) => t.Ticks * 100;
}
