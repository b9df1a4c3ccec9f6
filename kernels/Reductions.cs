namespace Xception.Gpu.Kernels;

using ILGPU;

/// <summary>
/// Deterministic reductions. Ops that reduce over many rows (weight gradients, batch statistics, split-K
/// GEMM) first write per-chunk partial sums, then this kernel adds the chunks in a fixed order, so a result
/// never depends on thread timing (no float atomics).
/// </summary>
public static class ReduceKernels
{
    /// <summary>out[l] = sum over r of partial[r, l] + beta * out[l].</summary>
    public static void SumRows(
        ArrayView<float> partial, // [R, L]
        int rows, int length, float beta,
        ArrayView<float> output)  // [L]
    {
        int step = Grids.Stride;
        for (int l = Grids.Start; l < length; l += step)
        {
            float s = 0f;
            for (int r = 0; r < rows; r++) s += partial[r * length + l];
            output[l] = beta == 0f ? s : s + beta * output[l];
        }
    }
}

/// <summary>Column sums of a [M, C] matrix, in row chunks (first stage of a deterministic reduction).</summary>
public static class ColumnSumKernels
{
    /// <summary>partial[ch, c] = sum of x[r, c] over the rows r of chunk ch.</summary>
    public static void Partials(
        ArrayView<float> x,        // [M, C]
        int rows, int cols, int chunkRows,
        ArrayView<float> partial)  // [chunks, C]
    {
        int chunks = (rows + chunkRows - 1) / chunkRows;
        int total = chunks * cols;
        int step = Grids.Stride;
        for (int t = Grids.Start; t < total; t += step)
        {
            int ch = t / cols, c = t - ch * cols;
            int r1 = (ch + 1) * chunkRows < rows ? (ch + 1) * chunkRows : rows;
            float s = 0f;
            for (int r = ch * chunkRows; r < r1; r++) s += x[r * cols + c];
            partial[t] = s;
        }
    }
}
