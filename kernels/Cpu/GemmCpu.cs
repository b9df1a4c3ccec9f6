namespace Xception.Gpu.Kernels.Cpu;

using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using ILGPU;
using ILGPU.IR.Intrinsics;
using ILGPU.Runtime;

/// <summary>
/// How a CPU GEMM C[M, N] = A[M, K] B[K, N] (+ beta C), or a batch of independent ones of one size, is cut into
/// work units, one unit per worker thread: per product RowUnits x ColUnits blocks of C and KSlices slices of K.
/// With one slice every unit writes C directly; with several (one product with a dense C only), slice s writes
/// its partial product to partials[s, M, N] and a row sum adds them.
/// </summary>
public struct GemmCpuPlan
{
    public int M, N, K;
    /// <summary>Rows of C per unit (a multiple of <see cref="GemmCpuKernels.Rows"/>), panels of B per unit, K per slice.</summary>
    public int UnitRows, UnitPanels, KChunk;
    public int RowUnits, ColUnits, KSlices;
    /// <summary>Columns per panel: <see cref="GemmCpuKernels.PanelWidth"/>.</summary>
    public int PanelWidth;
    /// <summary>
    /// Leading panels read from B itself: row-major B's whole panels are already k-major (B's row stride apart),
    /// so only the rest (a last partial panel, or every panel of a transposed B) is packed.
    /// </summary>
    public int InPlacePanels;
    /// <summary>B's row stride, for the panels read in place.</summary>
    public int BRowStride;
    /// <summary>C's row stride: N for a dense C, more where each product writes a band of columns of a wider matrix.</summary>
    public int Ldc;
    /// <summary>
    /// Independent products in one launch (the groups of a grouped convolution); product g's A, B and C start
    /// ABatch, BBatch and CBatch floats after product 0's, and its packed panels after product g - 1's.
    /// </summary>
    public int Batches;
    public long ABatch, BBatch, CBatch;

    /// <summary>Panels of B (per product) that are packed rather than read in place.</summary>
    public readonly int PackedPanels => (N + PanelWidth - 1) / PanelWidth - InPlacePanels;

    public readonly int Units => Batches * RowUnits * ColUnits * KSlices;
}

/// <summary>
/// The GEMM's CPU variant (see <see cref="GemmKernels"/> for the GPU ones): B is first packed into panels of
/// <see cref="GemmCpuKernels.PanelWidth"/> columns (two vectors) laid out k-major, then each worker walks its block of C
/// in register tiles of 6 rows x 2 vectors, streaming K through FMAs (Goto's scheme, as BLIS and MLAS use it),
/// with K cut into blocks of 256 so that a panel slice stays in the core's cache while the rows of A pass.
/// One launch index per worker: the CPU accelerator's cost per index (microseconds) vanishes against a tile.
/// </summary>
[CpuOnlyKernels]
public static class GemmCpuKernels
{
    /// <summary>Rows of C in one register tile (MR).</summary>
    public const int Rows = 6;

    /// <summary>K per cache block: a 256 x NR slice of a panel is 16 KB (AVX-512) and stays in L1/L2 while rows of A pass.</summary>
    public const int KBlock = 256;

    /// <summary>Rows of A per cache block (a multiple of <see cref="Rows"/>): 96 x 256 floats, 96 KB, kept in L2.</summary>
    public const int MBlock = 96;

    /// <summary>Columns of a packed panel (NR): two vectors of the process's SIMD path.</summary>
    public static int PanelWidth => 2 * Simd.Width;

    /// <summary>
    /// packed[g, p - InPlacePanels, k, j] = b_g(k, p * NR + j) for the panels not read in place, zero past column N;
    /// b_g(k, j) = b[g * BBatch + k * bRow + j * bCol].
    /// </summary>
    public static void PackB(
        ArrayView<float> b, int bRow, int bCol,  // B [K, N] per product
        GemmCpuPlan plan,
        ArrayView<float> packed)                 // [Batches, PackedPanels, K, NR]
    {
        int perBatch = plan.PackedPanels, all = plan.Batches * perBatch;
        int step = Grids.Stride;
        for (int q = Grids.Start; q < all; q += step)
            GemmCpu.PackPanel(b, bRow, bCol, plan, q / perBatch, plan.InPlacePanels + q % perBatch, packed);
    }

    /// <summary>One worker's units of C (or of the K-slice partials) from A and B's panels (packed, or B itself).</summary>
    public static void Multiply(
        ArrayView<float> a, int aRow, int aCol,  // A [M, K] per product
        ArrayView<float> b,                      // B [K, N] per product (its in-place panels)
        ArrayView<float> packed,                 // [Batches, PackedPanels, K, NR]
        GemmCpuPlan plan, float beta,
        ArrayView<float> c)                      // C [M, N] (row stride Ldc) per product, or [KSlices, M, N] partials
    {
        int units = plan.Units;
        int step = Grids.Stride;
        for (int u = Grids.Start; u < units; u += step)
            GemmCpu.Unit(a, aRow, aCol, b, packed, plan, beta, u, c);
    }
}

/// <summary>The SIMD bodies of <see cref="GemmCpuKernels"/>: plain .NET code that ILGPU's frontend does not read.</summary>
internal static unsafe class GemmCpu
{
    const int Rows = GemmCpuKernels.Rows, KBlock = GemmCpuKernels.KBlock, MBlock = GemmCpuKernels.MBlock;

    [IntrinsicImplementation, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackPanel(ArrayView<float> bv, int bRow, int bCol, GemmCpuPlan plan, int batch, int p, ArrayView<float> packedv)
    {
        int nr = plan.PanelWidth, k = plan.K, n = plan.N;
        float* b = (float*)bv.LoadEffectiveAddressAsPtr() + batch * plan.BBatch;
        float* dst = (float*)packedv.LoadEffectiveAddressAsPtr() + ((long)batch * plan.PackedPanels + p - plan.InPlacePanels) * k * nr;
        int j0 = p * nr, cols = Math.Min(nr, n - j0);
        if (bCol == 1 && cols == nr)
        {
            for (int kk = 0; kk < k; kk++)
                Buffer.MemoryCopy(b + (long)kk * bRow + j0, dst + (long)kk * nr, nr * 4L, nr * 4L);
            return;
        }
        if (bRow == 1)
        {
            // Transposed B: column j is contiguous along k; write it down the panel.
            for (int j = 0; j < nr; j++)
            {
                float* d = dst + j;
                if (j < cols)
                {
                    float* s = b + (long)(j0 + j) * bCol;
                    for (int kk = 0; kk < k; kk++) d[(long)kk * nr] = s[kk];
                }
                else
                    for (int kk = 0; kk < k; kk++) d[(long)kk * nr] = 0f;
            }
            return;
        }
        for (int kk = 0; kk < k; kk++)
        {
            float* s = b + (long)kk * bRow;
            float* d = dst + (long)kk * nr;
            for (int j = 0; j < nr; j++) d[j] = j < cols ? s[(long)(j0 + j) * bCol] : 0f;
        }
    }

    [IntrinsicImplementation]
    public static void Unit(ArrayView<float> av, int aRow, int aCol, ArrayView<float> bv, ArrayView<float> packedv, GemmCpuPlan plan,
        float beta, int u, ArrayView<float> cv)
    {
        float* a = (float*)av.LoadEffectiveAddressAsPtr();
        float* b = (float*)bv.LoadEffectiveAddressAsPtr();
        float* packed = (float*)packedv.LoadEffectiveAddressAsPtr();
        float* c = (float*)cv.LoadEffectiveAddressAsPtr();
        switch (Simd.Path)
        {
            case SimdPath.Avx512: Unit<V512, Vector512<float>>(a, aRow, aCol, b, packed, plan, beta, u, c); break;
            case SimdPath.Avx2: Unit<V256, Vector256<float>>(a, aRow, aCol, b, packed, plan, beta, u, c); break;
            default: Unit<V128, Vector128<float>>(a, aRow, aCol, b, packed, plan, beta, u, c); break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Unit<T, V>(float* a, long aRow, long aCol, float* b, float* packed, GemmCpuPlan plan, float beta, int u, float* c)
        where T : struct, IVec<V> where V : struct
    {
        int perSlice = plan.RowUnits * plan.ColUnits, perBatch = perSlice * plan.KSlices;
        int batch = u / perBatch;
        u -= batch * perBatch;
        int slice = u / perSlice, rest = u - slice * perSlice;
        int ru = rest / plan.ColUnits, cu = rest - ru * plan.ColUnits;
        int m = plan.M, n = plan.N, k = plan.K, nr = plan.PanelWidth, ldc = plan.Ldc;
        int panels = (n + nr - 1) / nr;
        int i0 = ru * plan.UnitRows, i1 = Math.Min(m, i0 + plan.UnitRows);
        int p0 = cu * plan.UnitPanels, p1 = Math.Min(panels, p0 + plan.UnitPanels);
        int k0 = slice * plan.KChunk, k1 = Math.Min(k, k0 + plan.KChunk);
        a += batch * plan.ABatch;
        b += batch * plan.BBatch;
        packed += (long)batch * plan.PackedPanels * k * nr;
        c += batch * plan.CBatch;
        if (plan.KSlices > 1) { c += (long)slice * m * n; ldc = n; beta = 0f; }
        float* edge = stackalloc float[Rows * 32];
        for (int kb = k0; kb < k1; kb += KBlock)
        {
            int kc = Math.Min(KBlock, k1 - kb);
            float bk = kb == k0 ? beta : 1f;
            for (int ib = i0; ib < i1; ib += MBlock)
            {
                int ie = Math.Min(i1, ib + MBlock);
                for (int p = p0; p < p1; p++)
                {
                    bool inPlace = p < plan.InPlacePanels;
                    float* bp = inPlace ? b + (long)kb * plan.BRowStride + (long)p * nr : packed + ((long)(p - plan.InPlacePanels) * k + kb) * nr;
                    long ldb = inPlace ? plan.BRowStride : nr;
                    int j0 = p * nr, cols = Math.Min(nr, n - j0);
                    for (int i = ib; i < ie; i += Rows)
                        Tile<T, V>(a + i * aRow + kb * aCol, aRow, aCol, bp, ldb, kc, c + (long)i * ldc + j0, ldc,
                            Math.Min(Rows, ie - i), cols, bk, edge);
                }
            }
        }
    }

    /// <summary>
    /// C[rows, cols] = A[rows, kc] Bpanel[kc, 2 vectors] + beta C: 6 x 2 accumulators in registers. Rows past
    /// <paramref name="rows"/> read row 0 again and are not stored; beta 0 never reads C. <paramref name="edge"/>
    /// holds a 6 x 2-vector tile for the edges.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Tile<T, V>(float* a, long aRow, long aCol, float* b, long ldb, int kc, float* c, int ldc, int rows, int cols, float beta, float* edge)
        where T : struct, IVec<V> where V : struct
    {
        int w = T.Width;
        long o1 = rows > 1 ? aRow : 0, o2 = rows > 2 ? 2 * aRow : 0, o3 = rows > 3 ? 3 * aRow : 0;
        long o4 = rows > 4 ? 4 * aRow : 0, o5 = rows > 5 ? 5 * aRow : 0;
        V c00 = T.Zero, c01 = T.Zero, c10 = T.Zero, c11 = T.Zero, c20 = T.Zero, c21 = T.Zero;
        V c30 = T.Zero, c31 = T.Zero, c40 = T.Zero, c41 = T.Zero, c50 = T.Zero, c51 = T.Zero;
        for (int kk = 0; kk < kc; kk++)
        {
            V b0 = T.Load(b), b1 = T.Load(b + w);
            V s = T.Splat(a[0]);
            c00 = T.Fma(s, b0, c00); c01 = T.Fma(s, b1, c01);
            s = T.Splat(a[o1]);
            c10 = T.Fma(s, b0, c10); c11 = T.Fma(s, b1, c11);
            s = T.Splat(a[o2]);
            c20 = T.Fma(s, b0, c20); c21 = T.Fma(s, b1, c21);
            s = T.Splat(a[o3]);
            c30 = T.Fma(s, b0, c30); c31 = T.Fma(s, b1, c31);
            s = T.Splat(a[o4]);
            c40 = T.Fma(s, b0, c40); c41 = T.Fma(s, b1, c41);
            s = T.Splat(a[o5]);
            c50 = T.Fma(s, b0, c50); c51 = T.Fma(s, b1, c51);
            a += aCol;
            b += ldb;
        }
        if (rows == Rows && cols == 2 * w)
        {
            // The common case, with no call while the accumulators are live (a call would make the JIT keep
            // them on the stack through the k loop).
            Store<T, V>(c, beta, c00, c01);
            Store<T, V>(c + ldc, beta, c10, c11);
            Store<T, V>(c + 2 * ldc, beta, c20, c21);
            Store<T, V>(c + 3 * ldc, beta, c30, c31);
            Store<T, V>(c + 4 * ldc, beta, c40, c41);
            Store<T, V>(c + 5 * ldc, beta, c50, c51);
            return;
        }
        // Edge tile (the last rows or the last panel's columns past N): through the caller's buffer.
        T.Store(edge, c00); T.Store(edge + w, c01);
        T.Store(edge + 2 * w, c10); T.Store(edge + 3 * w, c11);
        T.Store(edge + 4 * w, c20); T.Store(edge + 5 * w, c21);
        T.Store(edge + 6 * w, c30); T.Store(edge + 7 * w, c31);
        T.Store(edge + 8 * w, c40); T.Store(edge + 9 * w, c41);
        T.Store(edge + 10 * w, c50); T.Store(edge + 11 * w, c51);
        for (int r = 0; r < rows; r++)
        {
            float* src = edge + r * 2 * w, dst = c + (long)r * ldc;
            for (int j = 0; j < cols; j++) dst[j] = beta != 0f ? src[j] + beta * dst[j] : src[j];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store<T, V>(float* c, float beta, V v0, V v1) where T : struct, IVec<V> where V : struct
    {
        int w = T.Width;
        if (beta != 0f)
        {
            V bv = T.Splat(beta);
            v0 = T.Fma(bv, T.Load(c), v0);
            v1 = T.Fma(bv, T.Load(c + w), v1);
        }
        T.Store(c, v0);
        T.Store(c + w, v1);
    }
}
