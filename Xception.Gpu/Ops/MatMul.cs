using ILGPU;
using ILGPU.Runtime;
using Device = Xception.Gpu.Runtime.Device;
using Xception.Gpu.Kernels;

namespace Xception.Gpu.Ops;

/// <summary>
/// C[M, N] = op(A) * op(B) + beta * C, where op transposes when asked. The engine of the pointwise
/// convolution (91% of Xception's multiply-adds) and of the dense layer. Picks register tiles on the CPU
/// accelerator and shared-memory tiles on GPUs, and splits K when the output alone cannot fill the device.
/// </summary>
public sealed class MatMul
{
    const string Name = "matmul";
    readonly Device d;
    readonly Action<KernelConfig, ArrayView<float>, int, int, ArrayView<float>, int, int, int, int, int, int, float, ArrayView<float>> kernel;

    MatMul(Device d)
    {
        this.d = d;
        kernel = d.UsesGpuKernels
            ? d.Load("gemm.tiled", a => a.LoadStreamKernel<ArrayView<float>, int, int, ArrayView<float>, int, int, int, int, int, int, float, ArrayView<float>>(GemmKernels.Tiled))
            : d.Load("gemm.cpu", a => a.LoadStreamKernel<ArrayView<float>, int, int, ArrayView<float>, int, int, int, int, int, int, float, ArrayView<float>>(GemmKernels.Cpu));
    }

    public static MatMul On(Device d) => d.Op(x => new MatMul(x));

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

        bool gpu = d.UsesGpuKernels;
        int tileM = gpu ? GemmKernels.GpuTileM : GemmKernels.CpuTile;
        int tileN = gpu ? GemmKernels.GpuTileN : GemmKernels.CpuTile;
        long tiles = (long)((m + tileM - 1) / tileM) * ((n + tileN - 1) / tileN);
        // Units of work that keep the device busy: groups on a GPU (two per multiprocessor), threads on a CPU.
        long want = gpu ? 2L * d.Accelerator.NumMultiprocessors : 4L * d.Parallelism;
        int slices = 1;
        if (tiles < want && k >= 256)
            slices = (int)Math.Min((want + tiles - 1) / tiles, k / 64);
        // Partial products must fit in a scratch buffer of sensible size (64 Mi floats).
        while (slices > 1 && (long)slices * m * n > (64L << 20)) slices /= 2;
        int kChunk = slices <= 1 ? k : ((k + slices - 1) / slices + 15) / 16 * 16;
        slices = (k + kChunk - 1) / kChunk;

        var target = slices == 1 ? c : d.Scratch(ScratchSlot.GemmPartials, (long)slices * m * n);
        long units = tiles * slices;
        var config = gpu
            ? new KernelConfig((int)Math.Min(units, int.MaxValue), GemmKernels.GpuGroupSize)
            : d.GridFor(units);
        kernel(config, a, aRow, aCol, b, bRow, bCol, m, n, k, kChunk, slices == 1 ? beta : 0f, target);
        if (slices > 1) Reductions.On(d).SumRows(target, slices, m * n, beta, c);
    }

    /// <summary>Float64 reference of <see cref="Run"/>.</summary>
    public static double[] Reference(double[] a, bool transA, double[] b, bool transB, int m, int n, int k,
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
