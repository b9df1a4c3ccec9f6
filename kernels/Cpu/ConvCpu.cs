namespace Xception.Gpu.Kernels.Cpu;

using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using ILGPU;
using ILGPU.IR.Intrinsics;
using ILGPU.Runtime;

/// <summary>
/// The regular and grouped convolution's CPU variant as GEMMs (see <see cref="Conv2DKernels"/> for the GPU one):
/// the op lays a chunk of output rows out as im2col rows, group by group: col[g, pixel, (ky, kx, c)] holds the
/// window of group g's Cg input channels (zeros where the window hangs over the padding), so that each group's
/// columns [pixels, KH * KW * Cg] multiply its weights [KH * KW * Cg, Og] (a batch of GEMMs, one per group); for
/// the input gradient it adds the columns' gradient back onto the input pixels they came from (col2im). Chunks
/// keep the column buffer small.
/// </summary>
[CpuOnlyKernels]
public static class ConvCpuKernels
{
    /// <summary>col[g, p, (ky, kx, c)] for the output rows [row0, row0 + rows) of the [N * OH] rows.</summary>
    public static void Im2Col(
        ArrayView<float> x,    // [N, H, W, C]
        ConvShape s, int row0, int rows, int units,
        ArrayView<float> col)  // [G, rows * OW, KH * KW * C / G]
    {
        int step = Grids.Stride;
        for (int u = Grids.Start; u < units; u += step) ConvCpu.Im2Col(x, s, row0, rows, u, units, col);
    }

    /// <summary>dx[pixel] += every column entry that pixel fed, for the output rows [row0, row0 + rows).</summary>
    public static void Col2ImAdd(
        ArrayView<float> dcol, // [G, rows * OW, KH * KW * C / G]
        ConvShape s, int row0, int rows, int units,
        ArrayView<float> dx)   // [N, H, W, C]
    {
        int step = Grids.Stride;
        for (int u = Grids.Start; u < units; u += step) ConvCpu.Col2ImAdd(dcol, s, row0, rows, u, units, dx);
    }

    /// <summary>The strided 1x1 convolution's sampled pixels: xs[n, oy, ox] = x[n, oy * stride, ox * stride] (whole channel rows).</summary>
    public static void Gather(
        ArrayView<float> x,    // [N, H, W, C]
        ConvShape s, int units,
        ArrayView<float> xs)   // [N, OH, OW, C]
    {
        int step = Grids.Stride;
        for (int u = Grids.Start; u < units; u += step) ConvCpu.Gather(x, s, u, units, xs);
    }

    /// <summary>The inverse of <see cref="Gather"/> for gradients: dx is dxs at the sampled pixels and 0 elsewhere.</summary>
    public static void Scatter(
        ArrayView<float> dxs,  // [N, OH, OW, C]
        ConvShape s, int units,
        ArrayView<float> dx)   // [N, H, W, C]
    {
        int step = Grids.Stride;
        for (int u = Grids.Start; u < units; u += step) ConvCpu.Scatter(dxs, s, u, units, dx);
    }
}

internal static unsafe class ConvCpu
{
    [IntrinsicImplementation, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Gather(ArrayView<float> xv, ConvShape s, int u, int units, ArrayView<float> xsv)
    {
        float* x = (float*)xv.LoadEffectiveAddressAsPtr(), xs = (float*)xsv.LoadEffectiveAddressAsPtr();
        int c = s.C;
        CpuBands.Of(s.N * s.OH, u, units, out int r0, out int r1);
        for (int r = r0; r < r1; r++)
        {
            int n = r / s.OH, oy = r - n * s.OH;
            float* src = x + (long)(n * s.H + oy * s.Stride) * s.W * c;
            float* dst = xs + (long)r * s.OW * c;
            for (int ox = 0; ox < s.OW; ox++)
                new ReadOnlySpan<float>(src + (long)ox * s.Stride * c, c).CopyTo(new Span<float>(dst + (long)ox * c, c));
        }
    }

    [IntrinsicImplementation, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Scatter(ArrayView<float> dxsv, ConvShape s, int u, int units, ArrayView<float> dxv)
    {
        float* dxs = (float*)dxsv.LoadEffectiveAddressAsPtr(), dx = (float*)dxv.LoadEffectiveAddressAsPtr();
        int c = s.C;
        CpuBands.Of(s.N * s.H, u, units, out int r0, out int r1);
        for (int r = r0; r < r1; r++)
        {
            int n = r / s.H, iy = r - n * s.H;
            float* dst = dx + (long)r * s.W * c;
            new Span<float>(dst, s.W * c).Clear();
            if (iy % s.Stride != 0 || iy / s.Stride >= s.OH) continue;
            float* src = dxs + (long)(n * s.OH + iy / s.Stride) * s.OW * c;
            for (int ox = 0; ox < s.OW && ox * s.Stride < s.W; ox++)
                new ReadOnlySpan<float>(src + (long)ox * c, c).CopyTo(new Span<float>(dst + (long)ox * s.Stride * c, c));
        }
    }

    [IntrinsicImplementation, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Im2Col(ArrayView<float> xv, ConvShape s, int row0, int rows, int u, int units, ArrayView<float> colv)
    {
        float* x = (float*)xv.LoadEffectiveAddressAsPtr(), col = (float*)colv.LoadEffectiveAddressAsPtr();
        int c = s.C, cg = s.GroupInputs, groups = s.Groups, kg = s.KH * s.KW * cg;
        long groupStride = (long)rows * s.OW * kg;
        CpuBands.Of(rows, u, units, out int r0, out int r1);
        for (int r = r0; r < r1; r++)
        {
            int g = row0 + r, n = g / s.OH, oy = g - n * s.OH;
            for (int ox = 0; ox < s.OW; ox++)
            {
                float* dst = col + ((long)r * s.OW + ox) * kg;
                for (int ky = 0; ky < s.KH; ky++)
                {
                    int iy = oy * s.Stride + ky - s.PadTop;
                    for (int kx = 0; kx < s.KW; kx++)
                    {
                        int ix = ox * s.Stride + kx - s.PadLeft;
                        float* d = dst + (ky * s.KW + kx) * cg;
                        bool outside = iy < 0 || iy >= s.H || ix < 0 || ix >= s.W;
                        float* src = x + ((long)(n * s.H + iy) * s.W + ix) * c;
                        for (int grp = 0; grp < groups; grp++, d += groupStride, src += cg)
                            if (outside) new Span<float>(d, cg).Clear();
                            else new ReadOnlySpan<float>(src, cg).CopyTo(new Span<float>(d, cg));
                    }
                }
            }
        }
    }

    [IntrinsicImplementation, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Col2ImAdd(ArrayView<float> dcolv, ConvShape s, int row0, int rows, int u, int units, ArrayView<float> dxv)
    {
        float* dcol = (float*)dcolv.LoadEffectiveAddressAsPtr(), dx = (float*)dxv.LoadEffectiveAddressAsPtr();
        switch (Simd.Path)
        {
            case SimdPath.Avx512: Col2ImAdd<V512, Vector512<float>>(dcol, s, row0, rows, u, units, dx); break;
            case SimdPath.Avx2: Col2ImAdd<V256, Vector256<float>>(dcol, s, row0, rows, u, units, dx); break;
            default: Col2ImAdd<V128, Vector128<float>>(dcol, s, row0, rows, u, units, dx); break;
        }
    }

    /// <summary>
    /// Each unit owns a band of the input rows that the chunk's output rows touch and gathers into them, so no
    /// two units write one pixel.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Col2ImAdd<T, V>(float* dcol, ConvShape s, int row0, int rows, int u, int units, float* dx)
        where T : struct, IVec<V> where V : struct
    {
        int c = s.C, cg = s.GroupInputs, groups = s.Groups, vw = T.Width, cv = cg - cg % vw, kg = s.KH * s.KW * cg;
        long groupStride = (long)rows * s.OW * kg;
        int first = row0, last = row0 + rows - 1;           // global output rows n * OH + oy
        int nA = first / s.OH, oyA = first - nA * s.OH, nB = last / s.OH, oyB = last - nB * s.OH;
        int g0 = nA * s.H + Math.Max(0, oyA * s.Stride - s.PadTop);
        int g1 = nB * s.H + Math.Min(s.H, oyB * s.Stride - s.PadTop + s.KH);   // input rows n * H + iy, exclusive
        CpuBands.Of(g1 - g0, u, units, out int b0, out int b1);
        for (int gi = g0 + b0; gi < g0 + b1; gi++)
        {
            int n = gi / s.H, iy = gi - n * s.H;
            s.CoveringRows(iy, out int oy0, out int oy1);
            // Only the output rows inside this chunk.
            oy0 = Math.Max(oy0, first - n * s.OH);
            oy1 = Math.Min(oy1, last - n * s.OH);
            if (oy0 > oy1) continue;
            float* dxrow = dx + (long)gi * s.W * c;
            for (int ix = 0; ix < s.W; ix++)
            {
                s.CoveringCols(ix, out int ox0, out int ox1);
                float* dxo = dxrow + (long)ix * c;
                for (int oy = oy0; oy <= oy1; oy++)
                {
                    int ky = iy + s.PadTop - oy * s.Stride;
                    long prow = (long)(n * s.OH + oy - row0) * s.OW;
                    for (int ox = ox0; ox <= ox1; ox++)
                    {
                        int kx = ix + s.PadLeft - ox * s.Stride;
                        float* src = dcol + (prow + ox) * kg + (ky * s.KW + kx) * cg, dst = dxo;
                        for (int grp = 0; grp < groups; grp++, src += groupStride, dst += cg)
                        {
                            int ch = 0;
                            for (; ch < cv; ch += vw) T.Store(dst + ch, T.Add(T.Load(dst + ch), T.Load(src + ch)));
                            for (; ch < cg; ch++) dst[ch] += src[ch];
                        }
                    }
                }
            }
        }
    }
}
