using Xception.Gpu.Graph;

namespace Xception.Gpu.Training;

/// <summary>Metrics over a set of batches: mean loss, top-1 and top-5 accuracy, or MAP@100 for multi-label.</summary>
public sealed record EvalResult(long Count, double Loss, double Top1, double Top5, double MapAt100)
{
    public override string ToString() => double.IsNaN(MapAt100)
        ? $"loss {Loss:F4}, top-1 {Top1:P2}, top-5 {Top5:P2} on {Count} images"
        : $"loss {Loss:F4}, MAP@100 {MapAt100:P2} on {Count} images";
}

/// <summary>Runs a model in inference mode over batches and accumulates the metrics.</summary>
public static class Evaluation
{
    public static EvalResult Run(Model model, IEnumerable<TrainBatch> batches, int classes, bool multiLabel, float labelSmoothing = 0f) =>
        Accumulate(model, batches, classes, multiLabel, labelSmoothing).Result();

    /// <summary>
    /// The running sums of a pass (to be combined with other processes' before <see cref="Accumulator.Result"/>):
    /// each batch through the same forward pass and loss as training (<see cref="ReplicaStep"/>), in inference mode.
    /// </summary>
    public static Accumulator Accumulate(Model model, IEnumerable<TrainBatch> batches, int classes, bool multiLabel, float labelSmoothing = 0f)
    {
        if (model.Device is null) throw new InvalidOperationException("bind the model to a device first");
        if (model.Output.OutputShape[0] != classes)
            throw new ClassCountException($"the model has {model.Output.OutputShape[0]} outputs, the evaluation {classes} classes", model.Output.OutputShape[0], classes);
        var acc = new Accumulator(multiLabel);
        using var step = new ReplicaStep(model);
        foreach (var b in batches)
            if (b.Count > 0) acc.Add(step.Forward(b, training: false, labelSmoothing: labelSmoothing));
        return acc;
    }

    /// <summary>Running sums of a pass; kept in checkpoints so that a resumed epoch reports the same numbers.</summary>
    public sealed class Accumulator(bool multiLabel)
    {
        /// <summary>The sums so far.</summary>
        public MetricSums Sums { get; private set; }

        /// <summary>Images so far.</summary>
        public long Count => Sums.Count;

        /// <summary>Adds a batch's or a step's sums.</summary>
        public void Add(MetricSums sums) => Sums += sums;

        public EvalResult Result()
        {
            var s = Sums;
            return new(s.Count, s.Count == 0 ? double.NaN : s.LossSum / s.Count,
                multiLabel || s.Count == 0 ? double.NaN : (double)s.Top1 / s.Count,
                multiLabel || s.Count == 0 ? double.NaN : (double)s.Top5 / s.Count,
                multiLabel && s.ApCount > 0 ? s.ApSum / s.ApCount : double.NaN);
        }

        /// <summary>The sums in the flat form checkpoints store (see <see cref="MetricSums.ToArray"/>).</summary>
        public double[] Save() => Sums.ToArray();

        /// <summary>Replaces the sums with those <see cref="Save"/> returned.</summary>
        public void Load(double[] v) => Sums = MetricSums.FromArray(v);
    }
}
