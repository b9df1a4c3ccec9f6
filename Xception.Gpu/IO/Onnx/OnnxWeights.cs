using Xception.Gpu.Graph;
using Xception.Gpu.Graph.Layers;

namespace Xception.Gpu.IO.Onnx;

/// <summary>
/// Weight layouts and batch-norm folding for the export. Keras keeps convolution kernels as HWIO
/// [kh, kw, in, out] (depthwise [kh, kw, C, 1]); ONNX's Conv wants OIHW [out, in / group, kh, kw].
/// </summary>
internal static class OnnxWeights
{
    /// <summary>A Keras HWIO kernel [kh, kw, i, o] as ONNX OIHW [o, i, kh, kw].</summary>
    public static float[] Oihw(float[] hwio, int kh, int kw, int i, int o)
    {
        if (hwio.Length != (long)kh * kw * i * o)
            throw new InvalidOperationException($"kernel of {hwio.Length} values is not {kh}x{kw}x{i}x{o}");
        var r = new float[hwio.Length];
        for (int ky = 0; ky < kh; ky++)
            for (int kx = 0; kx < kw; kx++)
                for (int c = 0; c < i; c++)
                    for (int f = 0; f < o; f++)
                        r[((f * i + c) * kh + ky) * kw + kx] = hwio[((ky * kw + kx) * i + c) * o + f];
        return r;
    }

    /// <summary>
    /// A depthwise kernel, Keras [kh, kw, C, 1], as ONNX's grouped Conv weight [C, 1, kh, kw] (group = C):
    /// the same transposition with the channels as outputs.
    /// </summary>
    public static float[] DepthwiseOihw(float[] hwc1, int kh, int kw, int c) => Oihw(hwc1, kh, kw, 1, c);

    /// <summary>
    /// Folds an inference-mode batch norm that reads a bias-free convolution into that convolution:
    /// with s = gamma / sqrt(moving_variance + epsilon) per output channel, W' = W * s (every weight of output
    /// channel o) and b' = beta - moving_mean * s. Computed in float64 and rounded once to float32.
    /// The epsilon is the float32 value Keras' layer holds (TensorFlow adds it in float32 too).
    /// </summary>
    /// <param name="oihw">The convolution's ONNX weight [O, ...], each output channel contiguous.</param>
    /// <param name="outputs">O, the convolution's output channels (the batch norm's channels).</param>
    /// <param name="bn">The batch norm that reads the convolution.</param>
    public static (float[] Weight, float[] Bias) FoldBatchNorm(float[] oihw, int outputs, BatchNormLayer bn)
    {
        var (gamma, beta, mean, variance) = (Host(bn, "gamma"), Host(bn, "beta"), Host(bn, "moving_mean"), Host(bn, "moving_variance"));
        if (gamma.Length != outputs || oihw.Length % outputs != 0)
            throw new OnnxExportException($"{bn.Name}: {gamma.Length} channels do not follow a convolution of {outputs} outputs");
        int per = oihw.Length / outputs;
        double eps = bn.Epsilon;
        var w = new float[oihw.Length];
        var b = new float[outputs];
        for (int o = 0; o < outputs; o++)
        {
            double s = gamma[o] / Math.Sqrt(variance[o] + eps);
            for (int j = 0; j < per; j++) w[o * per + j] = (float)(oihw[o * per + j] * s);
            b[o] = (float)(beta[o] - mean[o] * s);
        }
        return (w, b);
    }

    /// <summary>The host values of a layer's weight by Keras' name (the model was synchronized before).</summary>
    public static float[] Host(Layer layer, string weight) =>
        (layer.Parameters.FirstOrDefault(p => p.Name == weight)
         ?? throw new OnnxExportException($"{layer.Name} ({layer.KerasType}) has no weight '{weight}'")).Host;
}
