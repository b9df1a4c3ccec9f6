using ILGPU;
using ILGPU.Runtime;
using Device = Xception.Gpu.Runtime.Device;
using Xception.Gpu.Kernels;
using Xception.Gpu.Kernels.Cpu;

namespace Xception.Gpu.Ops;

/// <summary>
/// C[M, N] = op(A) * op(B) + beta * C, where op transposes when asked. The engine of the pointwise
/// convolution (91% of Xception's multiply-adds) and of the dense layer. Picks register tiles on the CPU
/// accelerator and shared-memory tiles on GPUs, and splits K when the output alone cannot fill the device.
/// On the CPU accelerator it runs <see cref="GemmCpuKernels"/>: B packed into panels, SIMD register tiles,
/// one launch index per core. At <see cref="Precision.Tf32"/> or <see cref="Precision.Bf16"/> the device's tensor cores
/// multiply (<see cref="GemmTensorCoreKernels"/>), or, where it has none, the operands are rounded to the format
/// first and multiplied as at fp32.
/// </summary>
public sealed class Gemm
{
    const string Name = "gemm";
    readonly Device d;
    readonly Action<KernelConfig, ArrayView<float>, int, int, ArrayView<float>, int, int, int, int, int, int, float, ArrayView<float>>? kernel;

    readonly Action<KernelConfig, ArrayView<float>, int, int, ArrayView<float>, int, int, int, int, int, int, float, int, ArrayView<float>>? tensorCores;
    readonly Action<KernelConfig, ArrayView<float>, int, int, ArrayView<float>> round;
    readonly Action<KernelConfig, ArrayView<float>, int, int, GemmCpuPlan, ArrayView<float>>? packB;
    readonly Action<KernelConfig, ArrayView<float>, int, int, ArrayView<float>, ArrayView<float>, GemmCpuPlan, float, ArrayView<float>>? multiply;

    Gemm(Device d)
    {
        this.d = d;
        round = d.Load("gemm.round", a => a.LoadStreamKernel<ArrayView<float>, int, int, ArrayView<float>>(RoundKernels.Round));
        if (d.UsesGpuKernels)
        {
            kernel = d.Load("gemm.tiled", a => a.LoadStreamKernel<ArrayView<float>, int, int, ArrayView<float>, int, int, int, int, int, int, float, ArrayView<float>>(GemmKernels.Tiled));
            if (d.HasTensorCores)
                tensorCores = d.Load("gemm.tensor_cores", a => a.LoadStreamKernel<ArrayView<float>, int, int, ArrayView<float>, int, int, int, int, int, int, float, int, ArrayView<float>>(GemmTensorCoreKernels.Tiled));
        }
        else
        {
            packB = d.Load("gemm.cpu_simd.pack_b", a => a.LoadStreamKernel<ArrayView<float>, int, int, GemmCpuPlan, ArrayView<float>>(GemmCpuKernels.PackB));
            multiply = d.Load("gemm.cpu_simd.multiply", a => a.LoadStreamKernel<ArrayView<float>, int, int, ArrayView<float>, ArrayView<float>, GemmCpuPlan, float, ArrayView<float>>(GemmCpuKernels.Multiply));
        }
    }

    public static Gemm On(Device d) => d.Op(x => new Gemm(x));

    /// <summary>
    /// A is [M, K] ([K, M] when <paramref name="transA"/>), B is [K, N] ([N, K] when
    /// <paramref name="transB"/>), C is [M, N]; all dense row-major.
    /// </summary>
    public void Run(ArrayView<float> a, bool transA, ArrayView<float> b, bool transB,
        int m, int n, int k, float beta, ArrayView<float> c)
    {
        if (m <= 0 || n <= 0 || k <= 0)
            throw new OpArgumentException(Name, $"sizes M={m}, N={n}, K={k} must be positive");
        if (a.Length < (long)m * k || b.Length < (long)k * n || c.Length < (long)m * n)
            throw new ShapeException(Name, $"M={m}, N={n}, K={k} needs A of {(long)m * k}, B of {(long)k * n}, C of {(long)m * n} values; got {a.Length}, {b.Length}, {c.Length}");
        int aRow = transA ? 1 : k, aCol = transA ? m : 1;
        int bRow = transB ? 1 : n, bCol = transB ? k : 1;

        if (d.Precision != Precision.Fp32)
        {
            int format = Format(d.Precision);
            if (tensorCores is not null)
            {
                RunTensorCores(a, aRow, aCol, b, bRow, bCol, m, n, k, beta, format, c);
                return;
            }
            a = Rounded(a, (long)m * k, ScratchSlot.RoundedA, format);
            b = Rounded(b, (long)k * n, ScratchSlot.RoundedB, format);
        }
        if (!d.UsesGpuKernels)
        {
            RunCpu(a, aRow, aCol, 0, b, bRow, bCol, 0, m, n, k, beta, c, n, 0, 1);
            return;
        }
        long tiles = (long)((m + GemmKernels.GpuTileM - 1) / GemmKernels.GpuTileM) * ((n + GemmKernels.GpuTileN - 1) / GemmKernels.GpuTileN);
        var (slices, kChunk) = SplitK(tiles, m, n, k);

        var target = slices == 1 ? c : d.Scratch(ScratchSlot.GemmPartials, (long)slices * m * n);
        long units = tiles * slices;
        var config = new KernelConfig((int)Math.Min(units, int.MaxValue), GemmKernels.GpuGroupSize);
        kernel!(config, a, aRow, aCol, b, bRow, bCol, m, n, k, kChunk, slices == 1 ? beta : 0f, target);
        if (slices > 1) Reductions.On(d).SumRows(target, slices, m * n, beta, c);
    }

    /// <summary>The format code of the kernels (<see cref="RoundKernels"/>) for a precision other than fp32.</summary>
    internal static int Format(Precision precision) => precision == Precision.Bf16 ? RoundKernels.Bf16 : RoundKernels.Tf32;

    /// <summary>The first <paramref name="length"/> values of <paramref name="x"/> rounded to the format, in scratch.</summary>
    internal ArrayView<float> Rounded(ArrayView<float> x, long length, int slot, int format)
    {
        if (length > int.MaxValue) throw new OpArgumentException(Name, $"an operand of {length} values is too large to round in one piece");
        var target = d.Scratch(slot, length);
        round(d.GridFor(length), x, (int)length, format, target);
        return target;
    }

    /// <summary>
    /// How a GPU GEMM of <paramref name="tiles"/> output tiles cuts K: into slices when the tiles alone cannot keep the
    /// device busy (two groups per multiprocessor) and K is long, each slice a multiple of 16 (both kernels' K step
    /// divides it), the partial products within a scratch buffer of sensible size (64 Mi floats).
    /// </summary>
    internal (int Slices, int KChunk) SplitK(long tiles, int m, int n, int k)
    {
        long want = 2L * d.Accelerator.NumMultiprocessors;
        int slices = 1;
        if (tiles < want && k >= 256)
            slices = (int)Math.Min((want + tiles - 1) / tiles, k / 64);
        while (slices > 1 && (long)slices * m * n > (64L << 20)) slices /= 2;
        int kChunk = slices <= 1 ? k : ((k + slices - 1) / slices + 15) / 16 * 16;
        return ((k + kChunk - 1) / kChunk, kChunk);
    }

    /// <summary>The tensor-core GEMM, with split-K as for the fp32 kernel (<see cref="SplitK"/>).</summary>
    void RunTensorCores(ArrayView<float> a, int aRow, int aCol, ArrayView<float> b, int bRow, int bCol,
        int m, int n, int k, float beta, int format, ArrayView<float> c)
    {
        const int tm = GemmTensorCoreKernels.TileM, tn = GemmTensorCoreKernels.TileN;
        long tiles = (long)((m + tm - 1) / tm) * ((n + tn - 1) / tn);
        var (slices, kChunk) = SplitK(tiles, m, n, k);
        var target = slices == 1 ? c : d.Scratch(ScratchSlot.GemmPartials, (long)slices * m * n);
        var config = new KernelConfig((int)Math.Min(tiles * slices, int.MaxValue), GemmTensorCoreKernels.GroupSize);
        tensorCores!(config, a, aRow, aCol, b, bRow, bCol, m, n, k, kChunk, slices == 1 ? beta : 0f, format, target);
        if (slices > 1) Reductions.On(d).SumRows(target, slices, m * n, beta, c);
    }

    /// <summary>
    /// On the CPU accelerator, <paramref name="batches"/> independent products of one size in one launch each of
    /// packing and multiplying (the groups of a grouped convolution): C_g = A_g B_g + beta C_g for g below
    /// <paramref name="batches"/>, where A_g(i, j) = a[g * aBatch + i * aRow + j * aCol], B_g(i, j) =
    /// b[g * bBatch + i * bRow + j * bCol] and C_g(i, j) = c[g * cBatch + i * ldc + j]. One of each pair of
    /// strides must be 1 (row-major or transposed operands).
    /// </summary>
    internal void RunBatches(ArrayView<float> a, int aRow, int aCol, long aBatch, ArrayView<float> b, int bRow, int bCol, long bBatch,
        int m, int n, int k, float beta, ArrayView<float> c, int ldc, long cBatch, int batches)
    {
        if (d.UsesGpuKernels) throw new InvalidOperationException("batched GEMMs run on the CPU accelerator only");
        if (m <= 0 || n <= 0 || k <= 0 || batches <= 0 || ldc < n)
            throw new OpArgumentException(Name, $"sizes M={m}, N={n}, K={k}, {batches} products, C row stride {ldc} must be positive (the stride at least N)");
        long aEnd = Extent(aBatch, batches, aRow, m, aCol, k), bEnd = Extent(bBatch, batches, bRow, k, bCol, n), cEnd = Extent(cBatch, batches, ldc, m, 1, n);
        if (a.Length < aEnd || b.Length < bEnd || c.Length < cEnd)
            throw new ShapeException(Name, $"{batches} products of M={m}, N={n}, K={k} need A of {aEnd}, B of {bEnd}, C of {cEnd} values; got {a.Length}, {b.Length}, {c.Length}");
        if (d.Precision != Precision.Fp32)
        {
            int format = Format(d.Precision);
            a = Rounded(a, aEnd, ScratchSlot.RoundedA, format);
            b = Rounded(b, bEnd, ScratchSlot.RoundedB, format);
        }
        RunCpu(a, aRow, aCol, aBatch, b, bRow, bCol, bBatch, m, n, k, beta, c, ldc, cBatch, batches);
    }

    /// <summary>One past the last index a batch of strided [rows, cols] matrices reaches.</summary>
    static long Extent(long batchStride, int batches, long rowStride, int rows, long colStride, int cols) =>
        (batches - 1) * batchStride + (rows - 1) * rowStride + (cols - 1) * colStride + 1;

    /// <summary>
    /// The CPU accelerator's GEMM: pack the panels of B that are not already k-major (a launch over them), then one
    /// launch over the units of C (<see cref="CpuPlan"/>); K slices go to scratch and are added in order.
    /// </summary>
    void RunCpu(ArrayView<float> a, int aRow, int aCol, long aBatch, ArrayView<float> b, int bRow, int bCol, long bBatch,
        int m, int n, int k, float beta, ArrayView<float> c, int ldc, long cBatch, int batches)
    {
        var plan = CpuPlan(m, n, k, d.CpuCores, batches, splitK: batches == 1 && ldc == n);
        // Row-major B's whole panels are read in place (packing them would cost a weight gradient as much as its
        // multiply, B there being the output gradient); the rest is packed into scratch.
        plan.InPlacePanels = bCol == 1 ? n / plan.PanelWidth : 0;
        plan.BRowStride = bRow;
        (plan.Ldc, plan.ABatch, plan.BBatch, plan.CBatch) = (ldc, aBatch, bBatch, cBatch);
        long toPack = (long)batches * plan.PackedPanels;
        var packed = d.Scratch(ScratchSlot.GemmPacked, Math.Max(1L, toPack * k * plan.PanelWidth));
        if (toPack > 0) packB!(new KernelConfig((int)Math.Min(toPack, d.CpuCores), 1), b, bRow, bCol, plan, packed);
        var target = plan.KSlices == 1 ? c : d.Scratch(ScratchSlot.GemmPartials, (long)plan.KSlices * m * n);
        multiply!(d.CpuWorkers, a, aRow, aCol, b, packed, plan, beta, target);
        if (plan.KSlices > 1) Reductions.On(d).SumRows(target, plan.KSlices, m * n, beta, c);
    }

    /// <summary>
    /// How <see cref="RunCpu"/> cuts <paramref name="batches"/> products C[M, N] over K among <paramref name="workers"/>
    /// threads: each product into as many units as make the total a multiple of the workers, rows of C first where
    /// there are enough of them, then panels of columns, and K only for one small C with a long K (weight gradients
    /// of small layers) where <paramref name="splitK"/> allows it.
    /// </summary>
    internal static GemmCpuPlan CpuPlan(int m, int n, int k, int workers, int batches = 1, bool splitK = true)
    {
        int nr = GemmCpuKernels.PanelWidth, mr = GemmCpuKernels.Rows;
        int tilesM = (m + mr - 1) / mr, panels = (n + nr - 1) / nr;
        int perBatch = workers / Gcd(batches, workers);
        int rowUnits = Math.Min(tilesM, perBatch);
        int colUnits = Math.Min(panels, (perBatch + rowUnits - 1) / rowUnits);
        int slices = 1;
        // A C too small to give every worker rows or columns, over a long K: split K as well.
        if (splitK && rowUnits * colUnits < workers && k >= 2 * GemmCpuKernels.KBlock)
            slices = Math.Min(workers / (rowUnits * colUnits), k / GemmCpuKernels.KBlock);
        while (slices > 1 && (long)slices * m * n > (64L << 20)) slices /= 2;
        int kChunk = slices <= 1 ? k : ((k + slices - 1) / slices + GemmCpuKernels.KBlock - 1) / GemmCpuKernels.KBlock * GemmCpuKernels.KBlock;
        slices = (k + kChunk - 1) / kChunk;
        int unitRows = (tilesM + rowUnits - 1) / rowUnits * mr;
        int unitPanels = (panels + colUnits - 1) / colUnits;
        return new GemmCpuPlan
        {
            M = m, N = n, K = k, PanelWidth = nr, KChunk = kChunk, KSlices = slices,
            UnitRows = unitRows, RowUnits = (m + unitRows - 1) / unitRows,
            UnitPanels = unitPanels, ColUnits = (panels + unitPanels - 1) / unitPanels,
            Ldc = n, Batches = batches,
        };
    }

    static int Gcd(int a, int b) => b == 0 ? a : Gcd(b, a % b);

    /// <summary>Float64 reference of <see cref="Run"/>.</summary>
    internal static double[] Reference(double[] a, bool transA, double[] b, bool transB, int m, int n, int k,
        double beta = 0, double[]? c = null)
    {
        var r = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int kk = 0; kk < k; kk++)
                    s += (transA ? a[kk * m + i] : a[i * k + kk]) * (transB ? b[j * k + kk] : b[kk * n + j]);
                r[i * n + j] = s + (c is null ? 0 : beta * c[i * n + j]);
            }
        return r;
    }
}
