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
