namespace Xception.Gpu.Kernels;

using ILGPU;

/// <summary>
/// C[M, N] = A[M, K] * B[K, N] (+ beta * C). A and B are addressed through row and column strides, so one
/// kernel serves the forward product and both transposed backward products:
///   a(i, k) = a[i * aRow + k * aCol],  b(k, j) = b[k * bRow + j * bCol],  c(i, j) = c[i * N + j].
/// Split-K: when the output has too few tiles to fill the device, the K range is cut into slices of
/// kChunk; slice s writes its partial product to c[s * M * N + ...] and ReduceKernels.SumRows adds the slices.
/// With one slice the kernel writes C directly and applies beta.
/// This is the GPU variant (shared-memory tiles); the CPU accelerator runs Cpu/GemmCpu.cs (packed panels, SIMD).
/// </summary>
public static class GemmKernels
{
    /// <summary>
    /// GPU tile: 128 x 64 outputs (rows x columns) per group of 256 threads, 8 x 4 per thread, K in steps
    /// of 8. An 8 x 8 register tile (128 x 128) needed 133-139 registers with ILGPU 1.5.3 + ptxas 11.8, so
    /// only one group of 256 per SM; 8 x 4 keeps two.
    /// </summary>
    public const int GpuTileM = 128, GpuTileN = 64, GpuTileK = 8, GpuGroupSize = 256;

    /// <summary>
    /// Row pitches of the shared tiles in floats: 4 more than the tile so that the transposing stores (A or
    /// B with contiguous k) land on 32 different banks, and still a multiple of 4 so every row starts on a
    /// 16-byte boundary for the float4 reads.
    /// </summary>
    const int PitchA = GpuTileM + 4, PitchB = GpuTileN + 4;

    /// <summary>
    /// GPU variant: A and B tiles staged in shared memory, loads mapped along whichever of the two strides
    /// is contiguous so that neighbouring threads read neighbouring addresses. One group per output tile
    /// (grid-stride over tiles). Requires a group of exactly 256 threads.
    /// Thread (ty, tx) of the 16 x 16 grid owns rows ty*4..+3 and 64+ty*4..+3 and columns tx*4..+3: each
    /// of its three reads per k step is one aligned float4 (LDS.128 instead of four scalar LDS), and within
    /// a warp the float4s are consecutive or the same (a broadcast), so the reads are free of bank conflicts.
    /// </summary>
    public static void Tiled(
        ArrayView<float> a, int aRow, int aCol,   // A [M, K]
        ArrayView<float> b, int bRow, int bCol,   // B [K, N]
        int m, int n, int k, int kChunk, float beta,
        ArrayView<float> c)                       // C [M, N], or [S, M, N] partials when split
    {
        // Written as floats, read as float4: ILGPU aligns a shared float array to 16 bytes (checked in the
        // PTX: .align 16) and both pitches are multiples of 4 floats, so every float4 read is aligned.
        var sa = SharedMemory.Allocate<float>(GpuTileK * PitchA); // [8 k][132 rows]
        var sb = SharedMemory.Allocate<float>(GpuTileK * PitchB); // [8 k][68 cols]
        var sa4 = sa.Cast<Float4>();
        var sb4 = sb.Cast<Float4>();
        int tid = Group.IdxX;
        int tx = tid % 16, ty = tid / 16;
        int tilesN = (n + GpuTileN - 1) / GpuTileN;
        int tilesM = (m + GpuTileM - 1) / GpuTileM;
        int tiles = tilesM * tilesN;
        int slices = (k + kChunk - 1) / kChunk;
        int total = tiles * slices;
        for (int t = Grid.IdxX; t < total; t += Grid.DimX)
        {
            int slice = t / tiles;
            int rest = t - slice * tiles;
            int tm = rest / tilesN;
            int m0 = tm * GpuTileM, n0 = (rest - tm * tilesN) * GpuTileN;
            int k0 = slice * kChunk;
            int k1 = k0 + kChunk < k ? k0 + kChunk : k;
            // Two 4 x 4 blocks: the upper and the lower rows.
            Block c0 = default, c1 = default;
            for (int kt = k0; kt < k1; kt += GpuTileK)
            {
                for (int r = 0; r < 4; r++)
                {
                    int idx = tid + r * GpuGroupSize;
                    // A tile (8 x 128): contiguous along k when aCol == 1, else along rows.
                    int ai = aCol == 1 ? idx / GpuTileK : idx % GpuTileM;
                    int ak = aCol == 1 ? idx % GpuTileK : idx / GpuTileM;
                    int gi = m0 + ai, gk = kt + ak;
                    sa[ak * PitchA + ai] = gi < m && gk < k1 ? a[gi * aRow + gk * aCol] : 0f;
                    // B tile (8 x 64, half of A's): the first two rounds load it; contiguous along columns
                    // when bCol == 1, else along k.
                    if (r < 2)
                    {
                        int bj = bCol == 1 ? idx % GpuTileN : idx / GpuTileK;
                        int bk = bCol == 1 ? idx / GpuTileN : idx % GpuTileK;
                        int gj = n0 + bj, gk2 = kt + bk;
                        sb[bk * PitchB + bj] = gj < n && gk2 < k1 ? b[gk2 * bRow + gj * bCol] : 0f;
                    }
                }
                Group.Barrier();
                for (int kk = 0; kk < GpuTileK; kk++)
                {
                    int ra = kk * (PitchA / 4) + ty, rb = kk * (PitchB / 4) + tx;
                    Float4 a0 = sa4[ra], a1 = sa4[ra + 16], b0 = sb4[rb];
                    c0 = Fma(c0, a0, b0);
                    c1 = Fma(c1, a1, b0);
                }
                Group.Barrier();
            }
            int cBase = slices == 1 ? 0 : slice * m * n;
            float cb = slices == 1 ? beta : 0f;
            int i0 = m0 + ty * 4, j0 = n0 + tx * 4;
            StoreBlock(c, cBase, n, m, i0, j0, cb, c0);
            StoreBlock(c, cBase, n, m, i0 + 64, j0, cb, c1);
        }
    }

    /// <summary>Four consecutive floats; the unit of the shared-memory reads (one LDS.128).</summary>
    public struct Float4
    {
        public float X, Y, Z, W;
    }

    /// <summary>A 4 x 4 accumulator block, rows R0..R3.</summary>
    struct Block
    {
        public Float4 R0, R1, R2, R3;
    }

    static Float4 Fma(Float4 c, float a, Float4 b)
    {
        c.X += a * b.X; c.Y += a * b.Y; c.Z += a * b.Z; c.W += a * b.W;
        return c;
    }

    /// <summary>c += a * b^T: the outer product of four rows of A and four columns of B.</summary>
    static Block Fma(Block c, Float4 a, Float4 b)
    {
        c.R0 = Fma(c.R0, a.X, b); c.R1 = Fma(c.R1, a.Y, b);
        c.R2 = Fma(c.R2, a.Z, b); c.R3 = Fma(c.R3, a.W, b);
        return c;
    }

    static void StoreBlock(ArrayView<float> c, int cBase, int n, int m, int i0, int j0, float beta, Block v)
    {
        StoreRow(c, cBase, n, m, i0, j0, beta, v.R0.X, v.R0.Y, v.R0.Z, v.R0.W);
        StoreRow(c, cBase, n, m, i0 + 1, j0, beta, v.R1.X, v.R1.Y, v.R1.Z, v.R1.W);
        StoreRow(c, cBase, n, m, i0 + 2, j0, beta, v.R2.X, v.R2.Y, v.R2.Z, v.R2.W);
        StoreRow(c, cBase, n, m, i0 + 3, j0, beta, v.R3.X, v.R3.Y, v.R3.Z, v.R3.W);
    }

    static void StoreRow(ArrayView<float> c, int cBase, int n, int m, int i, int j0, float beta,
        float v0, float v1, float v2, float v3)
    {
        if (i >= m) return;
        int o = cBase + i * n + j0;
        if (j0 < n) c[o] = beta == 0f ? v0 : v0 + beta * c[o];
        if (j0 + 1 < n) c[o + 1] = beta == 0f ? v1 : v1 + beta * c[o + 1];
        if (j0 + 2 < n) c[o + 2] = beta == 0f ? v2 : v2 + beta * c[o + 2];
        if (j0 + 3 < n) c[o + 3] = beta == 0f ? v3 : v3 + beta * c[o + 3];
    }
}
