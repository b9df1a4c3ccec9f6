using Xception.Gpu.Graph;
using Xception.Gpu.Ops;

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

    /// <summary>The running sums of a pass (to be combined with other processes' before <see cref="Accumulator.Result"/>).</summary>
    public static Accumulator Accumulate(Model model, IEnumerable<TrainBatch> batches, int classes, bool multiLabel, float labelSmoothing = 0f)
    {
        var d = model.Device ?? throw new XceptionException("bind the model to a device first");
        var acc = new Accumulator(multiLabel);
        int perImage = model.Input.OutputShape.Aggregate(1, (a, b) => a * b);
        // Buffers per batch size (the last batch may be smaller), reused across batches.
        var buffers = new Dictionary<int, (Tensor<float> X, Tensor<float> Grad, Tensor<int> Labels, Tensor<float> Targets)>();
        try
        {
            foreach (var b in batches)
            {
                if (b.Count == 0) continue;
                if (!buffers.TryGetValue(b.Count, out var buf))
                    buffers[b.Count] = buf = (Tensor.Zeros(d, [b.Count, .. model.Input.OutputShape]), Tensor.Zeros(d, b.Count, classes),
                        Tensor.Zeros<int>(d, b.Count), Tensor.Zeros(d, b.Count, classes));
                buf.X.CopyFrom(b.X.AsSpan(0, b.Count * perImage));
                var logits = model.Executor(b.Count, training: false).Forward(buf.X);
                double loss;
                if (multiLabel)
                {
                    buf.Targets.CopyFrom(b.Targets!);
                    loss = Loss.On(d).SigmoidCrossEntropy(logits, buf.Targets, buf.Grad);
                }
                else loss = Loss.On(d).SoftmaxCrossEntropy(logits, b.Labels!, buf.Labels, buf.Grad, labelSmoothing);
                acc.Add(b, logits.ToArray(), loss, classes);
            }
        }
        finally
        {
            foreach (var (x, g, l, t) in buffers.Values) { x.Dispose(); g.Dispose(); l.Dispose(); t.Dispose(); }
        }
        return acc;
    }

    /// <summary>Running sums of a pass; kept in checkpoints so that a resumed epoch reports the same numbers.</summary>
    public sealed class Accumulator(bool multiLabel)
    {
        public long Count { get; set; }
        public double LossSum { get; set; }
        public long Top1 { get; set; }
        public long Top5 { get; set; }
        public double ApSum { get; set; }
        public long ApCount { get; set; }

        public void Add(TrainBatch b, float[] logits, double meanLoss, int classes)
        {
            Count += b.Count;
            LossSum += meanLoss * b.Count;
            if (multiLabel)
            {
                var (s, c) = Metrics.AveragePrecisionAtN(logits, b.Targets!, classes);
                ApSum += s; ApCount += c;
            }
            else
            {
                Top1 += Metrics.TopKCorrect(logits, b.Labels!, classes, 1);
                Top5 += Metrics.TopKCorrect(logits, b.Labels!, classes, Math.Min(5, classes));
            }
        }

        /// <summary>Adds sums saved by another accumulator (<see cref="Save"/>), e.g. a data-parallel step's.</summary>
        public void Add(double[] sums)
        {
            Count += (long)sums[0]; LossSum += sums[1]; Top1 += (long)sums[2]; Top5 += (long)sums[3]; ApSum += sums[4]; ApCount += (long)sums[5];
        }

        public EvalResult Result() => new(Count, Count == 0 ? double.NaN : LossSum / Count,
            multiLabel || Count == 0 ? double.NaN : (double)Top1 / Count,
            multiLabel || Count == 0 ? double.NaN : (double)Top5 / Count,
            multiLabel && ApCount > 0 ? ApSum / ApCount : double.NaN);

        public double[] Save() => [Count, LossSum, Top1, Top5, ApSum, ApCount];

        public void Load(double[] v)
        {
            (Count, LossSum, Top1, Top5, ApSum, ApCount) = ((long)v[0], v[1], (long)v[2], (long)v[3], v[4], (long)v[5]);
        }
    }
}
