using Xception.Gpu.Graph;

namespace Xception.Gpu.Training;

/// <summary>Training of one bound model on its own device: the one-replica case of <see cref="ITrainingReplicas"/>.</summary>
public sealed class SingleReplica : ITrainingReplicas, IDisposable
{
    readonly ReplicaStep replica;

    /// <param name="bound">a model bound to its device (not disposed with this object)</param>
    /// <param name="optimizer">the optimizer to run; its state starts at zero</param>
    public SingleReplica(Model bound, OptimizerSettings optimizer)
    {
        if (bound.Device is null) throw new InvalidOperationException("bind the model to a device before training");
        replica = new ReplicaStep(bound);
        Optimizer = new OptimizerState(bound, optimizer);
    }

    public Model Model => replica.Model;
    public OptimizerState Optimizer { get; }
    public int GlobalCount => 1;
    public ICollective? Processes => null;
    public bool IsRoot => true;

    public StepResult Step(TrainBatch batch, float lr, long step, float labelSmoothing = 0f)
    {
        if (batch.Count == 0) return StepResult.Skip(0, "an empty batch");
        var result = new StepResult(batch.Count, replica.Forward(batch, training: true, step, labelSmoothing), true, null);
        if (!double.IsFinite(result.Loss)) return result with { Applied = false };
        replica.Backward();
        Optimizer.Step(lr);
        return result;
    }

    /// <summary>There is no other process to tell: rethrows <paramref name="cause"/>.</summary>
    public void StopAll(Exception cause) => System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(cause).Throw();

    public EvalResult Evaluate(IEnumerable<TrainBatch> batches, int classes, bool multiLabel, float labelSmoothing = 0f) =>
        Evaluation.Run(Model, batches, classes, multiLabel, labelSmoothing);

    /// <summary>Nothing to compare: one replica.</summary>
    public void VerifyIdentical() { }

    /// <summary>Nothing to copy: one replica.</summary>
    public void CopyFirstToOthers() { }

    public void Dispose()
    {
        replica.Dispose();
        Optimizer.Dispose();
    }
}
