namespace Xception.Gpu.Kernels;

using ILGPU;
using ILGPU.Algorithms;

/// <summary>
/// Batch normalization over the channel axis of x seen as [M, C] (M = N * H * W). Training uses the batch
/// mean and the biased batch variance (two passes: the mean first, then squared deviations, which avoids
/// the cancellation of E[x^2] - E[x]^2) and moves the moving statistics as Keras does:
/// moving = momentum * moving + (1 - momentum) * batch. Inference uses the moving statistics.
/// Column sums go through ColumnSums / Reduce so that results are deterministic.
/// </summary>
public static class BatchNormKernels
{
    /// <summary>
    /// partial[ch, c] = sum over the chunk's rows of (x[r, c] - sum[c] / statRows)^2. statRows is the number
    /// of rows the statistics cover: M on one device, the global batch's rows with synchronized batch norm.
    /// </summary>
    public static void SquaredDeviationPartials(
        ArrayView<float> x,       // [M, C]
        ArrayView<float> sum,     // [C] column sums of x (over statRows rows)
        int rows, int cols, int chunkRows, int statRows,
        ArrayView<float> partial) // [chunks, C]
    {
        int chunks = (rows + chunkRows - 1) / chunkRows;
        int total = chunks * cols;
        float inv = 1f / statRows;
        int step = Grids.Stride;
        for (int t = Grids.Start; t < total; t += step)
        {
            int ch = t / cols, c = t - ch * cols;
            float mean = sum[c] * inv;
            int r1 = (ch + 1) * chunkRows < rows ? (ch + 1) * chunkRows : rows;
            float s = 0f;
            for (int r = ch * chunkRows; r < r1; r++)
            {
                float d = x[r * cols + c] - mean;
                s += d * d;
            }
            partial[t] = s;
        }
    }

    /// <summary>
    /// Per channel: mean = sum / M, var = sqdev / M (biased), invstd = 1 / sqrt(var + eps); moves the
    /// moving statistics with the batch mean and the biased variance.
    /// </summary>
    public static void Statistics(
        ArrayView<float> sum,         // [C]
        ArrayView<float> sqdev,       // [C]
        int rows, int cols, float eps, float momentum,
        ArrayView<float> mean,        // [C] out
        ArrayView<float> invstd,      // [C] out
        ArrayView<float> movingMean,  // [C] in/out
        ArrayView<float> movingVar)   // [C] in/out
    {
        int step = Grids.Stride;
        for (int c = Grids.Start; c < cols; c += step)
        {
            float m = sum[c] / rows, v = sqdev[c] / rows;
            mean[c] = m;
            invstd[c] = 1f / XMath.Sqrt(v + eps);
            movingMean[c] = momentum * movingMean[c] + (1f - momentum) * m;
            movingVar[c] = momentum * movingVar[c] + (1f - momentum) * v;
        }
    }

    /// <summary>invstd[c] = 1 / sqrt(movingVar[c] + eps), for inference.</summary>
    public static void InverseStd(
        ArrayView<float> variance,    // [C]
        int cols, float eps,
        ArrayView<float> invstd)      // [C]
    {
        int step = Grids.Stride;
        for (int c = Grids.Start; c < cols; c += step)
            invstd[c] = 1f / XMath.Sqrt(variance[c] + eps);
    }

    /// <summary>y = (x - mean) * invstd * gamma + beta.</summary>
    public static void Normalize(
        ArrayView<float> x,       // [M, C]
        ArrayView<float> mean,    // [C]
        ArrayView<float> invstd,  // [C]
        ArrayView<float> gamma,   // [C]
        ArrayView<float> beta,    // [C]
        int rows, int cols,
        ArrayView<float> y)       // [M, C]
    {
        int total = rows * cols;
        int step = Grids.Stride;
        for (int t = Grids.Start; t < total; t += step)
        {
            int c = t % cols;
            y[t] = (x[t] - mean[c]) * invstd[c] * gamma[c] + beta[c];
        }
    }

    /// <summary>partial[ch, c] = sum of dy; partial[ch, C + c] = sum of dy * xhat, over the chunk's rows.</summary>
    public static void BackwardPartials(
        ArrayView<float> dy,      // [M, C]
        ArrayView<float> x,       // [M, C]
        ArrayView<float> mean,    // [C]
        ArrayView<float> invstd,  // [C]
        int rows, int cols, int chunkRows,
        ArrayView<float> partial) // [chunks, 2C]
    {
        int chunks = (rows + chunkRows - 1) / chunkRows;
        int total = chunks * cols;
        int step = Grids.Stride;
        for (int t = Grids.Start; t < total; t += step)
        {
            int ch = t / cols, c = t - ch * cols;
            float m = mean[c], inv = invstd[c];
            int r1 = (ch + 1) * chunkRows < rows ? (ch + 1) * chunkRows : rows;
            float sdy = 0f, sdyx = 0f;
            for (int r = ch * chunkRows; r < r1; r++)
            {
                int i = r * cols + c;
                float g = dy[i];
                sdy += g;
                sdyx += g * (x[i] - m) * inv;
            }
            partial[ch * 2 * cols + c] = sdy;
            partial[ch * 2 * cols + cols + c] = sdyx;
        }
    }

    /// <summary>
    /// Training-mode input gradient, with dbeta = sum dy and dgamma = sum dy * xhat over the statRows rows
    /// the statistics cover: dx = gamma * invstd * (dy - dbeta / statRows - xhat * dgamma / statRows).
    /// </summary>
    public static void BackwardInput(
        ArrayView<float> dy,      // [M, C]
        ArrayView<float> x,       // [M, C]
        ArrayView<float> mean,    // [C]
        ArrayView<float> invstd,  // [C]
        ArrayView<float> gamma,   // [C]
        ArrayView<float> sums,    // [2C]: dbeta, then dgamma
        int rows, int cols, int statRows,
        ArrayView<float> dx)      // [M, C]
    {
        int total = rows * cols;
        float inv = 1f / statRows;
        int step = Grids.Stride;
        for (int t = Grids.Start; t < total; t += step)
        {
            int c = t % cols;
            float istd = invstd[c];
            float xhat = (x[t] - mean[c]) * istd;
            dx[t] = gamma[c] * istd * (dy[t] - sums[c] * inv - xhat * sums[cols + c] * inv);
        }
    }

    /// <summary>Inference-mode input gradient (statistics are constants): dx = dy * gamma * invstd.</summary>
    public static void BackwardInputFrozen(
        ArrayView<float> dy,      // [M, C]
        ArrayView<float> invstd,  // [C]
        ArrayView<float> gamma,   // [C]
        int rows, int cols,
        ArrayView<float> dx)      // [M, C]
    {
        int total = rows * cols;
        int step = Grids.Stride;
        for (int t = Grids.Start; t < total; t += step)
        {
            int c = t % cols;
            dx[t] = dy[t] * gamma[c] * invstd[c];
        }
    }
}
