namespace Xception.Gpu.Kernels;

using ILGPU;
using ILGPU.Algorithms;

/// <summary>
/// Losses over logits [N, C], with gradients for the mean over the batch. Each thread owns one row, so
/// the softmax sums run in a fixed order.
/// </summary>
public static class LossKernels
{
    /// <summary>
    /// Softmax cross-entropy against integer labels with label smoothing eps: the target is
    /// (1 - eps) * onehot + eps / C. loss[r] = logsumexp(z) - sum_j t_j z_j; dz = (softmax(z) - t) / N.
    /// </summary>
    public static void SoftmaxCrossEntropy(
        ArrayView<float> logits,  // [N, C]
        ArrayView<int> labels,    // [N]
        int rows, int cols, float smoothing,
        ArrayView<float> loss,    // [N]
        ArrayView<float> dlogits) // [N, C]
    {
        float off = smoothing / cols, on = 1f - smoothing + off, invRows = 1f / rows;
        int step = Grids.Stride;
        for (int r = Grids.Start; r < rows; r += step)
        {
            int b = r * cols, label = labels[r];
            float max = logits[b];
            for (int j = 1; j < cols; j++) max = XMath.Max(max, logits[b + j]);
            float sum = 0f, dot = 0f;
            for (int j = 0; j < cols; j++)
            {
                float z = logits[b + j];
                sum += XMath.Exp(z - max);
                dot += (j == label ? on : off) * (z - max);
            }
            loss[r] = XMath.Log(sum) - dot;
            float inv = 1f / sum;
            for (int j = 0; j < cols; j++)
                dlogits[b + j] = (XMath.Exp(logits[b + j] - max) * inv - (j == label ? on : off)) * invRows;
        }
    }

    /// <summary>Row-wise softmax (for predictions).</summary>
    public static void Softmax(ArrayView<float> logits, int rows, int cols, ArrayView<float> probs)
    {
        int step = Grids.Stride;
        for (int r = Grids.Start; r < rows; r += step)
        {
            int b = r * cols;
            float max = logits[b];
            for (int j = 1; j < cols; j++) max = XMath.Max(max, logits[b + j]);
            float sum = 0f;
            for (int j = 0; j < cols; j++) sum += XMath.Exp(logits[b + j] - max);
            float inv = 1f / sum;
            for (int j = 0; j < cols; j++) probs[b + j] = XMath.Exp(logits[b + j] - max) * inv;
        }
    }

    /// <summary>
    /// Multi-label sigmoid cross-entropy, mean over classes and batch (Keras' binary_crossentropy on
    /// logits): per element max(z, 0) - z t + log(1 + exp(-|z|)); loss[r] is the row's mean over classes;
    /// dz = (sigmoid(z) - t) / (N C).
    /// </summary>
    public static void SigmoidCrossEntropy(
        ArrayView<float> logits,  // [N, C]
        ArrayView<float> targets, // [N, C] in [0, 1]
        int rows, int cols,
        ArrayView<float> loss,    // [N]
        ArrayView<float> dlogits) // [N, C]
    {
        float scale = 1f / ((float)rows * cols);
        int step = Grids.Stride;
        for (int r = Grids.Start; r < rows; r += step)
        {
            float acc = 0f;
            for (int j = 0; j < cols; j++)
            {
                int i = r * cols + j;
                float z = logits[i], t = targets[i];
                acc += XMath.Max(z, 0f) - z * t + XMath.Log(1f + XMath.Exp(-XMath.Abs(z)));
                float sig = z >= 0f ? 1f / (1f + XMath.Exp(-z)) : XMath.Exp(z) / (1f + XMath.Exp(z));
                dlogits[i] = (sig - t) * scale;
            }
            loss[r] = acc / cols;
        }
    }
}
