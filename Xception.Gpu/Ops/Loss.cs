using ILGPU;
using ILGPU.Runtime;
using Device = Xception.Gpu.Runtime.Device;
using Xception.Gpu.Kernels;

namespace Xception.Gpu.Ops;

/// <summary>
/// Losses on logits [N, C], averaged over the batch, with their gradients: softmax cross-entropy over
/// integer labels (optionally label-smoothed) and multi-label sigmoid cross-entropy (the JFT setup).
/// </summary>
public sealed class Loss
{
    readonly Device d;
    readonly Action<KernelConfig, ArrayView<float>, ArrayView<int>, int, int, float, ArrayView<float>, ArrayView<float>> softmaxCe;
    readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int, ArrayView<float>, ArrayView<float>> sigmoidCe;
    readonly Action<KernelConfig, ArrayView<float>, int, int, ArrayView<float>> softmax;

    Loss(Device d)
    {
        this.d = d;
        softmaxCe = d.Load("loss.softmax_cross_entropy", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<int>, int, int, float, ArrayView<float>, ArrayView<float>>(LossKernels.SoftmaxCrossEntropy));
        sigmoidCe = d.Load("loss.sigmoid_cross_entropy", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int, ArrayView<float>, ArrayView<float>>(LossKernels.SigmoidCrossEntropy));
        softmax = d.Load("softmax", a => a.LoadStreamKernel<ArrayView<float>, int, int, ArrayView<float>>(LossKernels.Softmax));
    }

    public static Loss On(Device d) => d.Op(x => new Loss(x));

    /// <summary>
    /// Mean softmax cross-entropy; writes dL/dlogits. Labels are checked on the host: a label outside
    /// [0, C) is an error naming the row, never a silent wrong loss.
    /// </summary>
    public double SoftmaxCrossEntropy(Tensor<float> logits, int[] labels, Tensor<int> labelBuffer, Tensor<float> dlogits, float smoothing = 0f)
    {
        const string name = "softmax_cross_entropy";
        Expect.Device(name, d, ("logits", logits), ("logit gradient", dlogits));
        Expect.Device(name, d, "label buffer", labelBuffer);
        Expect.Rank(name, "logits", logits, 2);
        int n = logits.Shape[0], c = logits.Shape[1];
        if (labels.Length != n) throw new ShapeException(name, $"{labels.Length} labels for {n} rows of logits {logits.Shape}");
        for (int i = 0; i < n; i++)
            if (labels[i] < 0 || labels[i] >= c)
                throw new OpArgumentException(name, $"label {labels[i]} at row {i} is outside [0, {c})");
        if (!(smoothing >= 0f && smoothing < 1f)) throw new OpArgumentException(name, $"label smoothing must be in [0, 1), got {smoothing}");
        Expect.Dims(name, "label buffer", labelBuffer, n);
        Expect.SameShape(name, "logit gradient", dlogits, "logits", logits);
        labelBuffer.CopyFrom(labels);
        var rowLoss = d.Scratch(ScratchSlot.RowPartials, n);
        softmaxCe(d.GridFor(n), logits.View, labelBuffer.View, n, c, smoothing, rowLoss, dlogits.View);
        return Mean(rowLoss, n);
    }

    /// <summary>Mean sigmoid cross-entropy over N x C against targets in [0, 1]; writes dL/dlogits.</summary>
    public double SigmoidCrossEntropy(Tensor<float> logits, Tensor<float> targets, Tensor<float> dlogits)
    {
        const string name = "sigmoid_cross_entropy";
        Expect.Device(name, d, ("logits", logits), ("targets", targets), ("logit gradient", dlogits));
        Expect.Rank(name, "logits", logits, 2);
        Expect.SameShape(name, "targets", targets, "logits", logits);
        Expect.SameShape(name, "logit gradient", dlogits, "logits", logits);
        int n = logits.Shape[0], c = logits.Shape[1];
        var rowLoss = d.Scratch(ScratchSlot.RowPartials, n);
        sigmoidCe(d.GridFor(n), logits.View, targets.View, n, c, rowLoss, dlogits.View);
        return Mean(rowLoss, n);
    }

    /// <summary>Row-wise softmax probabilities.</summary>
    public void Softmax(Tensor<float> logits, Tensor<float> probs)
    {
        Expect.Device("softmax", d, ("logits", logits), ("probabilities", probs));
        Expect.Rank("softmax", "logits", logits, 2);
        Expect.SameShape("softmax", "probabilities", probs, "logits", logits);
        softmax(d.GridFor(logits.Shape[0]), logits.View, logits.Shape[0], logits.Shape[1], probs.View);
    }

    static double Mean(ArrayView<float> rowLoss, int n)
    {
        var host = new float[n];
        rowLoss.CopyToCPU(host);
        double s = 0;
        foreach (var v in host) s += v;
        return s / n;
    }

    internal static class Reference
    {
        public static (double Loss, double[] Dlogits) SoftmaxCrossEntropy(double[] z, int[] labels, int c, double smoothing)
        {
            int n = labels.Length;
            var dz = new double[z.Length];
            double loss = 0;
            for (int r = 0; r < n; r++)
            {
                double max = double.NegativeInfinity;
                for (int j = 0; j < c; j++) max = Math.Max(max, z[r * c + j]);
                double sum = 0;
                for (int j = 0; j < c; j++) sum += Math.Exp(z[r * c + j] - max);
                for (int j = 0; j < c; j++)
                {
                    double t = (j == labels[r] ? 1 - smoothing : 0) + smoothing / c;
                    double logp = z[r * c + j] - max - Math.Log(sum);
                    loss -= t * logp / n;
                    dz[r * c + j] = (Math.Exp(logp) - t) / n;
                }
            }
            return (loss, dz);
        }

        public static (double Loss, double[] Dlogits) SigmoidCrossEntropy(double[] z, double[] t, int n, int c)
        {
            var dz = new double[z.Length];
            double loss = 0;
            for (int i = 0; i < z.Length; i++)
            {
                double p = 1 / (1 + Math.Exp(-z[i]));
                loss -= (t[i] * Math.Log(p) + (1 - t[i]) * Math.Log(1 - p)) / (n * c);
                dz[i] = (p - t[i]) / (n * c);
            }
            return (loss, dz);
        }
    }
}
