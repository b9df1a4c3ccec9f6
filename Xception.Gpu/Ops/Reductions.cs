using ILGPU;
using ILGPU.Runtime;
using Device = Xception.Gpu.Runtime.Device;
using Xception.Gpu.Kernels;
using Xception.Gpu.Kernels.Cpu;

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

    readonly Action<KernelConfig, ArrayView<float>, int, int, float, int, ArrayView<float>>? cpuSumRows;
    readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int, int, int, ArrayView<float>>? cpuColumns;

    Reductions(Device d)
    {
        this.d = d;
        if (!d.UsesGpuKernels)
        {
            cpuSumRows = d.Load("reduce.cpu_simd.sum_rows", a => a.LoadStreamKernel<ArrayView<float>, int, int, float, int, ArrayView<float>>(ElementwiseCpuKernels.SumRows));
            cpuColumns = d.Load("reduce.cpu_simd.column_partials", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int, int, int, ArrayView<float>>(ElementwiseCpuKernels.ColumnPartials));
        }
        sumRows = d.UsesGpuKernels ? d.Load("reduce.sum_rows", a => a.LoadStreamKernel<ArrayView<float>, int, int, float, ArrayView<float>>(ReduceKernels.SumRows)) : null!;
        partials = d.UsesGpuKernels ? d.Load("reduce.column_partials", a => a.LoadStreamKernel<ArrayView<float>, int, int, int, ArrayView<float>>(ColumnSumKernels.Partials)) : null!;
    }

    public static Reductions On(Device d) => d.Op(x => new Reductions(x));

    /// <summary>output[l] = sum over r of partial[r, l] + beta * output[l].</summary>
    public void SumRows(ArrayView<float> partial, int rows, int length, float beta, ArrayView<float> output)
    {
        if (cpuSumRows is not null) cpuSumRows(d.CpuWorkers, partial, rows, length, beta, d.CpuCores, output);
        else sumRows(d.GridFor(length), partial, rows, length, beta, output);
    }

    /// <summary>True on the CPU accelerator, whose column sums take one band of rows per core (<see cref="ColumnSums"/>).</summary>
    internal bool HasCpuColumnSums => cpuColumns is not null;

    /// <summary>
    /// CPU accelerator only: per-channel sums over the rows of a [rows, cols] (see <see cref="ColumnSum"/> for what
    /// is summed; b, p and q as it says, unused ones may be any view), one partial row per core added in order into
    /// output (+ beta * output). NormalizedProducts writes 2 cols values.
    /// </summary>
    internal void ColumnSums(ArrayView<float> a, ArrayView<float> b, ArrayView<float> p, ArrayView<float> q, int rows, int cols,
        int statRows, ColumnSum kind, float beta, ArrayView<float> output)
    {
        int width = kind == ColumnSum.NormalizedProducts ? 2 * cols : cols;
        var partial = ColumnPartials(a, b, p, q, rows, cols, statRows, 1, kind, ScratchSlot.RowPartials);
        SumRows(partial, d.CpuCores, width, beta, output);
    }

    /// <summary>
    /// CPU accelerator only: the per-core partial rows of <see cref="ColumnSums"/> ([CpuCores, cols], or 2 cols), left
    /// unsummed in scratch slot <paramref name="slot"/> for a launch that adds them itself; for SquaredDeviation, p may
    /// hold <paramref name="pRows"/> rows of column sums.
    /// </summary>
    internal ArrayView<float> ColumnPartials(ArrayView<float> a, ArrayView<float> b, ArrayView<float> p, ArrayView<float> q,
        int rows, int cols, int statRows, int pRows, ColumnSum kind, int slot)
    {
        int width = kind == ColumnSum.NormalizedProducts ? 2 * cols : cols;
        var partial = d.Scratch(slot, (long)d.CpuCores * width);
        cpuColumns!(d.CpuWorkers, a, b, p, q, rows, cols, statRows, pRows, (int)kind, d.CpuCores, partial);
        return partial;
    }

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
        if (HasCpuColumnSums)
        {
            ColumnSums(x, x, x, x, rows, cols, 0, ColumnSum.Plain, beta, output);
            return;
        }
        var (chunkRows, chunks) = Chunking(rows, cols);
        var p = d.Scratch(ScratchSlot.RowPartials, (long)chunks * cols);
        partials(d.GridFor((long)chunks * cols), x, rows, cols, chunkRows, p);
        SumRows(p, chunks, cols, beta, output);
    }
}
