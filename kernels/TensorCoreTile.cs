namespace Xception.Gpu.Kernels;

using ILGPU;

/// <summary>
/// One operand of a tensor-core product, as a matrix indexed by (outer, k): A's rows or B's columns against the
/// reduction index. A plain matrix is <see cref="StridedOperand"/>; the convolutions read their operands straight from
/// the tensors (implicit GEMM, see <see cref="ConvTensorCoreKernels"/>), so no column matrix is ever built.
/// </summary>
public interface ITileOperand
{
    /// <summary>Element (outer, k); the tile calls it only within the matrix.</summary>
    float Load(int outer, int k);

    /// <summary>Whether consecutive k are adjacent in memory (else consecutive outer indices are): it decides which index consecutive threads load along.</summary>
    bool KContiguous { get; }
}

/// <summary>A dense matrix operand: element (outer, k) at outer * OuterStride + k * KStride.</summary>
public struct StridedOperand(ArrayView<float> values, int outerStride, int kStride) : ITileOperand
{
    readonly ArrayView<float> values = values;
    readonly int outerStride = outerStride, kStride = kStride;

    /// <inheritdoc/>
    public readonly float Load(int outer, int k) => values[outer * outerStride + k * kStride];

    /// <inheritdoc/>
    public readonly bool KContiguous => kStride == 1;
}

/// <summary>
/// C[M, N] = A[M, K] * B[K, N] (+ beta * C) on the tensor cores (<see cref="Mma"/>): the operands rounded to TF32 or
/// bf16 as they are staged in shared memory, products accumulated in fp32. Split-K as <see cref="GemmKernels.Tiled"/>:
/// work unit u is output tile u mod tiles of K slice u / tiles, whose partial products go to C's slice when there are
/// several. A group of 128 threads (4 warps) computes a 64 x 64 tile of C, K in steps of 16; warp w takes the
/// 32 x 32 quarter (w / 2, w % 2), as 2 x 4 fragments of 16 x 8.
/// </summary>
internal static class TensorCoreTile
{
    /// <summary>Tile and group shape.</summary>
    public const int TileM = 64, TileN = 64, TileK = 16, GroupSize = 128;

    // Rows of the staged tiles, in floats: 8 more than the tile so that the fragment reads of a warp (rows g and
    // columns 2t..2t+1 apart) spread over the banks instead of landing on a few.
    const int Pitch = TileM + 8;

    /// <summary>Four fp32 accumulators of one 16 x 8 fragment.</summary>
    struct Acc
    {
        public float X0, X1, X2, X3;
    }

    /// <summary>
    /// C (or slice S's partials) = A * B over the K range of each slice: the body of every tensor-core kernel. The
    /// generic operands are structs, so each kernel gets its own copy with the loads inlined.
    /// </summary>
    public static void Run<TA, TB>(TA a, TB b, int m, int n, int k, int kChunk, float beta, int format, ArrayView<float> c)
        where TA : struct, ITileOperand
        where TB : struct, ITileOperand
    {
        var sa = SharedMemory.Allocate<float>(TileK * Pitch); // [16 k][72]: rows of A
        var sb = SharedMemory.Allocate<float>(TileK * Pitch); // [16 k][72]: columns of B
        int tid = Group.IdxX;
        int warp = tid >> 5, lane = tid & 31;
        int g = lane >> 2, t = lane & 3;
        int wm = (warp >> 1) * 32, wn = (warp & 1) * 32;
        bool bf16 = format == RoundKernels.Bf16;
        int tilesN = (n + TileN - 1) / TileN;
        int tilesM = (m + TileM - 1) / TileM;
        int tiles = tilesM * tilesN;
        int slices = (k + kChunk - 1) / kChunk;
        int total = tiles * slices;
        for (int u = Grid.IdxX; u < total; u += Grid.DimX)
        {
            int slice = u / tiles;
            int rest = u - slice * tiles;
            int tm = rest / tilesN;
            int m0 = tm * TileM, n0 = (rest - tm * tilesN) * TileN;
            int k0 = slice * kChunk;
            int k1 = k0 + kChunk < k ? k0 + kChunk : k;
            Acc c00 = default, c01 = default, c02 = default, c03 = default;
            Acc c10 = default, c11 = default, c12 = default, c13 = default;
            for (int kt = k0; kt < k1; kt += TileK)
            {
                for (int r = 0; r < TileM * TileK / GroupSize; r++)
                {
                    int idx = tid + r * GroupSize;
                    // Consecutive threads load along whichever index of an operand is contiguous in memory.
                    int ai = a.KContiguous ? idx / TileK : idx % TileM;
                    int ak = a.KContiguous ? idx % TileK : idx / TileM;
                    int gi = m0 + ai, gk = kt + ak;
                    float av = gi < m && gk < k1 ? a.Load(gi, gk) : 0f;
                    sa[ak * Pitch + ai] = bf16 ? Rounding.Bf16(av) : Rounding.Tf32(av);
                    int bj = b.KContiguous ? idx / TileK : idx % TileN;
                    int bk = b.KContiguous ? idx % TileK : idx / TileN;
                    int gj = n0 + bj, gk2 = kt + bk;
                    float bv = gj < n && gk2 < k1 ? b.Load(gj, gk2) : 0f;
                    sb[bk * Pitch + bj] = bf16 ? Rounding.Bf16(bv) : Rounding.Tf32(bv);
                }
                Group.Barrier();
                if (bf16)
                {
                    Bf16Step(sa, sb, wm, wn, g, t, ref c00, ref c01, ref c02, ref c03, ref c10, ref c11, ref c12, ref c13);
                }
                else
                {
                    Tf32Step(sa, sb, 0, wm, wn, g, t, ref c00, ref c01, ref c02, ref c03, ref c10, ref c11, ref c12, ref c13);
                    Tf32Step(sa, sb, 8, wm, wn, g, t, ref c00, ref c01, ref c02, ref c03, ref c10, ref c11, ref c12, ref c13);
                }
                Group.Barrier();
            }
            long offset = slices == 1 ? 0 : (long)slice * m * n;
            int row = m0 + wm + g, col = n0 + wn + 2 * t;
            Store(c, offset, m, n, beta, row, col, c00);
            Store(c, offset, m, n, beta, row, col + 8, c01);
            Store(c, offset, m, n, beta, row, col + 16, c02);
            Store(c, offset, m, n, beta, row, col + 24, c03);
            Store(c, offset, m, n, beta, row + 16, col, c10);
            Store(c, offset, m, n, beta, row + 16, col + 8, c11);
            Store(c, offset, m, n, beta, row + 16, col + 16, c12);
            Store(c, offset, m, n, beta, row + 16, col + 24, c13);
        }
    }

    /// <summary>One k8 half of a staged tile through the warp's 2 x 4 TF32 fragments.</summary>
    static void Tf32Step(ArrayView<float> sa, ArrayView<float> sb, int kk, int wm, int wn, int g, int t,
        ref Acc c00, ref Acc c01, ref Acc c02, ref Acc c03, ref Acc c10, ref Acc c11, ref Acc c12, ref Acc c13)
    {
        int lo = (kk + t) * Pitch, hi = (kk + t + 4) * Pitch;
        float a00 = sa[lo + wm + g], a01 = sa[lo + wm + g + 8], a02 = sa[hi + wm + g], a03 = sa[hi + wm + g + 8];
        float a10 = sa[lo + wm + 16 + g], a11 = sa[lo + wm + 24 + g], a12 = sa[hi + wm + 16 + g], a13 = sa[hi + wm + 24 + g];
        float b00 = sb[lo + wn + g], b01 = sb[hi + wn + g];
        float b10 = sb[lo + wn + 8 + g], b11 = sb[hi + wn + 8 + g];
        float b20 = sb[lo + wn + 16 + g], b21 = sb[hi + wn + 16 + g];
        float b30 = sb[lo + wn + 24 + g], b31 = sb[hi + wn + 24 + g];
        Mma.Tf32(ref c00.X0, ref c00.X1, ref c00.X2, ref c00.X3, a00, a01, a02, a03, b00, b01);
        Mma.Tf32(ref c01.X0, ref c01.X1, ref c01.X2, ref c01.X3, a00, a01, a02, a03, b10, b11);
        Mma.Tf32(ref c02.X0, ref c02.X1, ref c02.X2, ref c02.X3, a00, a01, a02, a03, b20, b21);
        Mma.Tf32(ref c03.X0, ref c03.X1, ref c03.X2, ref c03.X3, a00, a01, a02, a03, b30, b31);
        Mma.Tf32(ref c10.X0, ref c10.X1, ref c10.X2, ref c10.X3, a10, a11, a12, a13, b00, b01);
        Mma.Tf32(ref c11.X0, ref c11.X1, ref c11.X2, ref c11.X3, a10, a11, a12, a13, b10, b11);
        Mma.Tf32(ref c12.X0, ref c12.X1, ref c12.X2, ref c12.X3, a10, a11, a12, a13, b20, b21);
        Mma.Tf32(ref c13.X0, ref c13.X1, ref c13.X2, ref c13.X3, a10, a11, a12, a13, b30, b31);
    }

    /// <summary>A staged tile (k16) through the warp's 2 x 4 bf16 fragments.</summary>
    static void Bf16Step(ArrayView<float> sa, ArrayView<float> sb, int wm, int wn, int g, int t,
        ref Acc c00, ref Acc c01, ref Acc c02, ref Acc c03, ref Acc c10, ref Acc c11, ref Acc c12, ref Acc c13)
    {
        int k0 = 2 * t * Pitch, k1 = (2 * t + 1) * Pitch, k8 = (2 * t + 8) * Pitch, k9 = (2 * t + 9) * Pitch;
        uint a00 = A(sa, k0, k1, wm + g), a01 = A(sa, k0, k1, wm + g + 8), a02 = A(sa, k8, k9, wm + g), a03 = A(sa, k8, k9, wm + g + 8);
        uint a10 = A(sa, k0, k1, wm + 16 + g), a11 = A(sa, k0, k1, wm + 24 + g), a12 = A(sa, k8, k9, wm + 16 + g), a13 = A(sa, k8, k9, wm + 24 + g);
        uint b00 = A(sb, k0, k1, wn + g), b01 = A(sb, k8, k9, wn + g);
        uint b10 = A(sb, k0, k1, wn + 8 + g), b11 = A(sb, k8, k9, wn + 8 + g);
        uint b20 = A(sb, k0, k1, wn + 16 + g), b21 = A(sb, k8, k9, wn + 16 + g);
        uint b30 = A(sb, k0, k1, wn + 24 + g), b31 = A(sb, k8, k9, wn + 24 + g);
        Mma.Bf16(ref c00.X0, ref c00.X1, ref c00.X2, ref c00.X3, a00, a01, a02, a03, b00, b01);
        Mma.Bf16(ref c01.X0, ref c01.X1, ref c01.X2, ref c01.X3, a00, a01, a02, a03, b10, b11);
        Mma.Bf16(ref c02.X0, ref c02.X1, ref c02.X2, ref c02.X3, a00, a01, a02, a03, b20, b21);
        Mma.Bf16(ref c03.X0, ref c03.X1, ref c03.X2, ref c03.X3, a00, a01, a02, a03, b30, b31);
        Mma.Bf16(ref c10.X0, ref c10.X1, ref c10.X2, ref c10.X3, a10, a11, a12, a13, b00, b01);
        Mma.Bf16(ref c11.X0, ref c11.X1, ref c11.X2, ref c11.X3, a10, a11, a12, a13, b10, b11);
        Mma.Bf16(ref c12.X0, ref c12.X1, ref c12.X2, ref c12.X3, a10, a11, a12, a13, b20, b21);
        Mma.Bf16(ref c13.X0, ref c13.X1, ref c13.X2, ref c13.X3, a10, a11, a12, a13, b30, b31);
    }

    /// <summary>Two staged values at k rows <paramref name="even"/> and <paramref name="odd"/> of column <paramref name="x"/>, packed as a bf16 pair.</summary>
    static uint A(ArrayView<float> s, int even, int odd, int x) => Rounding.PackBf16(s[even + x], s[odd + x]);

    /// <summary>A fragment's four values into C (rows r, r + 8; columns j, j + 1), beta applied when C is written whole.</summary>
    static void Store(ArrayView<float> c, long offset, int m, int n, float beta, int r, int j, Acc v)
    {
        Put(c, offset, m, n, beta, r, j, v.X0);
        Put(c, offset, m, n, beta, r, j + 1, v.X1);
        Put(c, offset, m, n, beta, r + 8, j, v.X2);
        Put(c, offset, m, n, beta, r + 8, j + 1, v.X3);
    }

    static void Put(ArrayView<float> c, long offset, int m, int n, float beta, int r, int j, float v)
    {
        if (r >= m || j >= n) return;
        long at = offset + (long)r * n + j;
        c[at] = beta == 0f ? v : v + beta * c[at];
    }
}
