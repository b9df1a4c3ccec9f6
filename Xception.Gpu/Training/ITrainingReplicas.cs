using Xception.Gpu.Graph;

namespace Xception.Gpu.Training;

/// <summary>
/// What the trainer drives: the model replicas that take each step together. <see cref="SingleReplica"/> is one
/// model on one device; the data-parallel layer (<c>Parallel.DataParallel</c>, above Training) implements it
/// for replicas on several devices and processes. Every member is called on every process of a run, in the
/// same order: several of them are collectives.
/// </summary>
public interface ITrainingReplicas
{
    /// <summary>The first replica: what checkpoints save and restore.</summary>
    Model Model { get; }

    /// <summary>The first replica's optimizer state (every replica's is the same).</summary>
    OptimizerState Optimizer { get; }

    /// <summary>Replicas in the whole run (each takes a share of every batch).</summary>
    int GlobalCount { get; }

    /// <summary>The run's processes (MPI), or null in a one-process run.</summary>
    ICollective? Processes { get; }

    /// <summary>True in the process that writes checkpoints and logs.</summary>
    bool IsRoot { get; }

    /// <summary>
    /// One synchronous step on this process's part of a batch: forward, loss, backward and update on every
    /// replica, applied everywhere or nowhere. It is skipped (nothing changed) when a replica would get no
    /// image, and not applied when the loss is not finite (the weights are still the last good ones).
    /// </summary>
    StepResult Step(TrainBatch batch, float lr, long step, float labelSmoothing = 0f);

    /// <summary>
    /// Called instead of <see cref="Step"/> when this process cannot take its part of a step (its batch failed
    /// to load): the other processes learn it, and all stop together. Always throws.
    /// </summary>
    void StopAll(Exception cause);

    /// <summary>Metrics over the validation batches (each process's shard, combined over the processes).</summary>
    EvalResult Evaluate(IEnumerable<TrainBatch> batches, int classes, bool multiLabel, float labelSmoothing = 0f);

    /// <summary>Throws when the replicas no longer hold the same weights.</summary>
    void VerifyIdentical();

    /// <summary>Copies the first replica's weights and optimizer state to the others (after a restore into the first).</summary>
    void CopyFirstToOthers();
}
