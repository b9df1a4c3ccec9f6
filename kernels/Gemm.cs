namespace Xception.Gpu.Kernels;

using ILGPU;

/// <summary>
/// C[M, N] = A[M, K] * B[K, N] (+ beta * C). A and B are addressed through row and column strides, so one
/// kernel serves the forward product and both transposed backward products:
///   a(i, k) = a[i * aRow + k * aCol],  b(k, j) = b[k * bRow + j * bCol],  c(i, j) = c[i * N + j].
/// Split-K: when the output has too few tiles to fill the device, the K range is cut into slices of
/// kChunk; slice s writes its partial product to c[s * M * N + ...] and ReduceKernels.SumRows adds the slices.
/// With one slice the kernel writes C directly and applies beta.
/// Two variants: register tiles without barriers for the CPU accelerator, shared-memory tiles for GPUs.
/// </summary>
public static class GemmKernels
{
    /// <summary>Output rows and columns per CPU thread (4 x 4 register tile).</summary>
    public const int CpuTile = 4;

    /// <summary>CPU variant: each thread owns 4 x 4 outputs held in registers; grid-stride over tiles.</summary>
    public static void Cpu(
        ArrayView<float> a, int aRow, int aCol,   // A [M, K]
        ArrayView<float> b, int bRow, int bCol,   // B [K, N]
        int m, int n, int k, int kChunk, float beta,
        ArrayView<float> c)                       // C [M, N], or [S, M, N] partials when split
    {
        int tilesN = (n + 3) / 4;
        int tilesM = (m + 3) / 4;
        int tiles = tilesM * tilesN;
        int slices = (k + kChunk - 1) / kChunk;
        int total = tiles * slices;
        int step = Grids.Stride;
        for (int t = Grids.Start; t < total; t += step)
        {
            int slice = t / tiles;
            int rest = t - slice * tiles;
            int tm = rest / tilesN;
            int m0 = tm * 4, n0 = (rest - tm * tilesN) * 4;
            int k0 = slice * kChunk;
            int k1 = k0 + kChunk < k ? k0 + kChunk : k;
            int cBase = slices == 1 ? 0 : slice * m * n;
            float cb = slices == 1 ? beta : 0f;
            if (m0 + 4 <= m && n0 + 4 <= n)
            {
                float c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
                float c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
                int pa = m0 * aRow + k0 * aCol, pb = k0 * bRow + n0 * bCol;
                for (int kk = k0; kk < k1; kk++)
                {
                    float a0 = a[pa], a1 = a[pa + aRow], a2 = a[pa + 2 * aRow], a3 = a[pa + 3 * aRow];
                    float b0 = b[pb], b1 = b[pb + bCol], b2 = b[pb + 2 * bCol], b3 = b[pb + 3 * bCol];
                    pa += aCol; pb += bRow;
                    c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
                    c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
                    c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
                    c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
                }
                int o = cBase + m0 * n + n0;
                Store4(c, o, cb, c00, c01, c02, c03); o += n;
                Store4(c, o, cb, c10, c11, c12, c13); o += n;
                Store4(c, o, cb, c20, c21, c22, c23); o += n;
                Store4(c, o, cb, c30, c31, c32, c33);
            }
            else
            {
                // Edge tile: plain loops, only for the last rows or columns.
                for (int i = m0; i < m && i < m0 + 4; i++)
                    for (int j = n0; j < n && j < n0 + 4; j++)
                    {
                        float s = 0f;
                        for (int kk = k0; kk < k1; kk++) s += a[i * aRow + kk * aCol] * b[kk * bRow + j * bCol];
                        int o = cBase + i * n + j;
                        c[o] = cb == 0f ? s : s + cb * c[o];
                    }
            }
        }
    }

    static void Store4(ArrayView<float> c, int o, float beta, float v0, float v1, float v2, float v3)
    {
        if (beta == 0f)
        {
            c[o] = v0; c[o + 1] = v1; c[o + 2] = v2; c[o + 3] = v3;
        }
        else
        {
            c[o] = v0 + beta * c[o]; c[o + 1] = v1 + beta * c[o + 1];
            c[o + 2] = v2 + beta * c[o + 2]; c[o + 3] = v3 + beta * c[o + 3];
        }
    }

    /// <summary>GPU tile: 64 x 64 outputs per group of 256 threads, 4 x 4 per thread, K in steps of 16.</summary>
    public const int GpuTile = 64, GpuTileK = 16, GpuGroupSize = 256;

    /// <summary>
    /// GPU variant: A and B tiles staged in shared memory, loads mapped along whichever of the two strides
    /// is contiguous so that neighbouring threads read neighbouring addresses. One group per output tile
    /// (grid-stride over tiles). Requires a group of exactly 256 threads.
    /// </summary>
    public static void Tiled(
        ArrayView<float> a, int aRow, int aCol,   // A [M, K]
        ArrayView<float> b, int bRow, int bCol,   // B [K, N]
        int m, int n, int k, int kChunk, float beta,
        ArrayView<float> c)                       // C [M, N], or [S, M, N] partials when split
    {
        var sa = SharedMemory.Allocate<float>(GpuTileK * GpuTile); // [16 k][64 rows]
        var sb = SharedMemory.Allocate<float>(GpuTileK * GpuTile); // [16 k][64 cols]
        int tid = Group.IdxX;
        int tx = tid % 16, ty = tid / 16;
        int tilesN = (n + GpuTile - 1) / GpuTile;
        int tilesM = (m + GpuTile - 1) / GpuTile;
        int tiles = tilesM * tilesN;
        int slices = (k + kChunk - 1) / kChunk;
        int total = tiles * slices;
        for (int t = Grid.IdxX; t < total; t += Grid.DimX)
        {
            int slice = t / tiles;
            int rest = t - slice * tiles;
            int tm = rest / tilesN;
            int m0 = tm * GpuTile, n0 = (rest - tm * tilesN) * GpuTile;
            int k0 = slice * kChunk;
            int k1 = k0 + kChunk < k ? k0 + kChunk : k;
            float c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
            float c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
            for (int kt = k0; kt < k1; kt += GpuTileK)
            {
                for (int r = 0; r < 4; r++)
                {
                    int idx = tid + r * GpuGroupSize;
                    // A tile: contiguous along k when aCol == 1, else along rows.
                    int ai = aCol == 1 ? idx / GpuTileK : idx % GpuTile;
                    int ak = aCol == 1 ? idx % GpuTileK : idx / GpuTile;
                    int gi = m0 + ai, gk = kt + ak;
                    sa[ak * GpuTile + ai] = gi < m && gk < k1 ? a[gi * aRow + gk * aCol] : 0f;
                    // B tile: contiguous along columns when bCol == 1, else along k.
                    int bj = bCol == 1 ? idx % GpuTile : idx / GpuTileK;
                    int bk = bCol == 1 ? idx / GpuTile : idx % GpuTileK;
                    int gj = n0 + bj, gk2 = kt + bk;
                    sb[bk * GpuTile + bj] = gj < n && gk2 < k1 ? b[gk2 * bRow + gj * bCol] : 0f;
                }
                Group.Barrier();
                for (int kk = 0; kk < GpuTileK; kk++)
                {
                    int ra = kk * GpuTile + ty * 4, rb = kk * GpuTile + tx * 4;
                    float a0 = sa[ra], a1 = sa[ra + 1], a2 = sa[ra + 2], a3 = sa[ra + 3];
                    float b0 = sb[rb], b1 = sb[rb + 1], b2 = sb[rb + 2], b3 = sb[rb + 3];
                    c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
                    c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
                    c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
                    c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
                }
                Group.Barrier();
            }
            int cBase = slices == 1 ? 0 : slice * m * n;
            float cb = slices == 1 ? beta : 0f;
            int i0 = m0 + ty * 4, j0 = n0 + tx * 4;
            StoreRow(c, cBase, n, m, i0, j0, cb, c00, c01, c02, c03);
            StoreRow(c, cBase, n, m, i0 + 1, j0, cb, c10, c11, c12, c13);
            StoreRow(c, cBase, n, m, i0 + 2, j0, cb, c20, c21, c22, c23);
            StoreRow(c, cBase, n, m, i0 + 3, j0, cb, c30, c31, c32, c33);
        }
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
