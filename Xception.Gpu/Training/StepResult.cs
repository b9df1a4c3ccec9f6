namespace Xception.Gpu.Training;

/// <summary>What one synchronous training step did, the same on every replica and every process.</summary>
/// <param name="GlobalCount">images in the step over all replicas</param>
/// <param name="Sums">the step's metric sums over all replicas</param>
/// <param name="Applied">false when the step was skipped: no replica changed</param>
/// <param name="Skipped">why it was skipped (null when applied, or when the loss was not finite)</param>
public sealed record StepResult(int GlobalCount, MetricSums Sums, bool Applied, string? Skipped)
{
    /// <summary>The mean loss over the global batch.</summary>
    public double Loss => Sums.MeanLoss;

    /// <summary>A step that changed nothing, and why.</summary>
    public static StepResult Skip(int globalCount, string why) => new(globalCount, default, false, why);
}
