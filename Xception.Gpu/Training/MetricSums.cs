namespace Xception.Gpu.Training;

/// <summary>
/// The running sums behind a pass's metrics: images, loss, top-1 and top-5 hits (single-label), and the
/// average-precision sum and count (multi-label). Sums, not means, so that batches, replicas and processes
/// combine by adding them.
/// </summary>
/// <param name="Count">images</param>
/// <param name="LossSum">the sum of every image's loss (a batch adds its mean loss times its images)</param>
/// <param name="Top1">images whose label was the top prediction</param>
/// <param name="Top5">images whose label was among the top five (or all classes, when fewer)</param>
/// <param name="ApSum">the sum of the images' average precision at 100 (multi-label)</param>
/// <param name="ApCount">images counted in <paramref name="ApSum"/> (those with at least one label)</param>
public readonly record struct MetricSums(long Count, double LossSum, long Top1, long Top5, double ApSum, long ApCount)
{
    /// <summary>Values in this record's flat form (<see cref="ToArray"/>).</summary>
    public const int Length = 6;

    /// <summary>The mean loss, or NaN for no image.</summary>
    public double MeanLoss => Count > 0 ? LossSum / Count : double.NaN;

    /// <summary>
    /// The sums of one batch from its logits (host copy, row-major [count, classes]) and mean loss. A batch
    /// with targets and no labels is multi-label: it adds average precision instead of top-k hits.
    /// </summary>
    public static MetricSums Of(TrainBatch b, float[] logits, double meanLoss, int classes)
    {
        if (b.Labels is null)
        {
            var (s, c) = Metrics.AveragePrecisionAtN(logits, b.Targets!, classes);
            return new(b.Count, meanLoss * b.Count, 0, 0, s, c);
        }
        return new(b.Count, meanLoss * b.Count, Metrics.TopKCorrect(logits, b.Labels, classes, 1),
            Metrics.TopKCorrect(logits, b.Labels, classes, Math.Min(5, classes)), 0, 0);
    }

    public static MetricSums operator +(MetricSums a, MetricSums b) =>
        new(a.Count + b.Count, a.LossSum + b.LossSum, a.Top1 + b.Top1, a.Top5 + b.Top5, a.ApSum + b.ApSum, a.ApCount + b.ApCount);

    /// <summary>
    /// The flat form: what an all-reduce sums, and what checkpoints store as their running metrics (its order
    /// is the checkpoint format: count, loss sum, top-1, top-5, AP sum, AP count).
    /// </summary>
    public double[] ToArray() => [Count, LossSum, Top1, Top5, ApSum, ApCount];

    /// <summary>The record from its flat form (<see cref="ToArray"/>).</summary>
    public static MetricSums FromArray(double[] v)
    {
        if (v.Length != Length) throw new ArgumentException($"metric sums have {Length} values, got {v.Length}", nameof(v));
        return new((long)v[0], v[1], (long)v[2], (long)v[3], v[4], (long)v[5]);
    }
}
