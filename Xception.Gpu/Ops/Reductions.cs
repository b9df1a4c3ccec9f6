using ILGPU;
using ILGPU.Runtime;
using Device = Xception.Gpu.Runtime.Device;
using Xception.Gpu.Kernels;

namespace Xception.Gpu.Ops;

/// <summary>
/// Deterministic column reductions: per-chunk partial sums, then a fixed-order sum of the chunks.
/// Shared by the GEMM's split-K, dense bias gradients and other ops that reduce over rows.
/// </summary>
public sealed class Reductions
{
    readonly Device d;
    readonly Action<KernelConfig, ArrayView<float>, int, int, float, ArrayView<float>> sumRows;
    readonly Action<KernelConfig, ArrayView<float>, int, int, int, ArrayView<float>> partials;

    Reductions(Device d)
    {
        this.d = d;
        sumRows = d.Load("reduce.sum_rows", a => a.LoadStreamKernel<ArrayView<float>, int, int, float, ArrayView<float>>(ReduceKernels.SumRows));
        partials = d.Load("reduce.column_partials", a => a.LoadStreamKernel<ArrayView<float>, int, int, int, ArrayView<float>>(ColumnSumKernels.Partials));
    }

    public static Reductions On(Device d) => d.Op(x => new Reductions(x));

    /// <summary>output[l] = sum over r of partial[r, l] + beta * output[l].</summary>
    public void SumRows(ArrayView<float> partial, int rows, int length, float beta, ArrayView<float> output) =>
        sumRows(d.GridFor(length), partial, rows, length, beta, output);

    /// <summary>
    /// How to cut <paramref name="rows"/> rows into chunks so that chunks x <paramref name="cols"/> threads
    /// keep the device busy: returns (chunkRows, chunks).
    /// </summary>
    public (int ChunkRows, int Chunks) Chunking(int rows, int cols)
    {
        int want = (int)Math.Clamp((2L * d.Parallelism + cols - 1) / cols, 1, rows);
        int chunkRows = Math.Max((rows + want - 1) / want, 1);
        return (chunkRows, (rows + chunkRows - 1) / chunkRows);
    }

    /// <summary>
    /// A sum over <paramref name="rows"/> rows into <paramref name="length"/> outputs in two stages: the
    /// op's partial kernel writes [chunks, length] partial sums over row chunks (launched by
    /// <paramref name="partials"/> with a grid for threadsPerChunk x chunks threads, the chunk length and the
    /// scratch view), then the chunks are added in order into <paramref name="output"/>.
    /// </summary>
    public void ChunkedSum(int rows, int threadsPerChunk, int length, Action<KernelConfig, int, ArrayView<float>> partials, ArrayView<float> output)
    {
        var (chunkRows, chunks) = Chunking(rows, threadsPerChunk);
        var p = d.Scratch(ScratchSlot.RowPartials, (long)chunks * length);
        partials(d.GridFor((long)chunks * threadsPerChunk), chunkRows, p);
        SumRows(p, chunks, length, 0f, output);
    }

    /// <summary>output[c] = sum over rows of x[r, c] + beta * output[c], with x seen as [rows, cols].</summary>
    public void SumColumns(ArrayView<float> x, int rows, int cols, float beta, ArrayView<float> output)
    {
        var (chunkRows, chunks) = Chunking(rows, cols);
        var p = d.Scratch(ScratchSlot.RowPartials, (long)chunks * cols);
        partials(d.GridFor((long)chunks * cols), x, rows, cols, chunkRows, p);
        SumRows(p, chunks, cols, beta, output);
    }
}
