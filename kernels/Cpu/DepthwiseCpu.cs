namespace Xception.Gpu.Kernels.Cpu;

using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using ILGPU;
using ILGPU.IR.Intrinsics;
using ILGPU.Runtime;

/// <summary>
/// The depthwise convolution's CPU variant (see <see cref="DepthwiseKernels"/> for the GPU one). NHWC keeps a
/// pixel's channels contiguous, so every kernel vectorizes over channels; each of the <c>units</c> launch
/// indices (one per core) takes a contiguous band of rows. The weight gradient sums each band into its own
/// partial [units, KH, KW, C], which a fixed-order row sum then adds: the result does not depend on timing.
/// </summary>
[CpuOnlyKernels]
public static class DepthwiseCpuKernels
{
    public static void Forward(
        ArrayView<float> x,   // [N, H, W, C]
        ArrayView<float> w,   // [KH, KW, C]
        ConvShape s, int units,
        ArrayView<float> y)   // [N, OH, OW, C]
    {
        int step = Grids.Stride;
        for (int u = Grids.Start; u < units; u += step) DepthwiseCpu.Forward(x, w, s, u, units, y);
    }

    public static void BackwardInput(
        ArrayView<float> dy,  // [N, OH, OW, C]
        ArrayView<float> w,   // [KH, KW, C]
        ConvShape s, int units,
        ArrayView<float> dx)  // [N, H, W, C]
    {
        int step = Grids.Stride;
        for (int u = Grids.Start; u < units; u += step) DepthwiseCpu.BackwardInput(dy, w, s, u, units, dx);
    }

    public static void BackwardWeight(
        ArrayView<float> x,       // [N, H, W, C]
        ArrayView<float> dy,      // [N, OH, OW, C]
        ConvShape s, int units,
        ArrayView<float> partial) // [units, KH, KW, C]
    {
        int step = Grids.Stride;
        for (int u = Grids.Start; u < units; u += step) DepthwiseCpu.BackwardWeight(x, dy, s, u, units, partial);
    }
}

internal static unsafe class DepthwiseCpu
{
    /// <summary>Unit <paramref name="u"/> of <paramref name="units"/>: rows [first, end) of <paramref name="rows"/>.</summary>
    internal static void Band(int rows, int u, int units, out int first, out int end)
    {
        first = (int)((long)rows * u / units);
        end = (int)((long)rows * (u + 1) / units);
    }

    [IntrinsicImplementation, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Forward(ArrayView<float> xv, ArrayView<float> wv, ConvShape s, int u, int units, ArrayView<float> yv)
    {
        float* x = (float*)xv.LoadEffectiveAddressAsPtr(), w = (float*)wv.LoadEffectiveAddressAsPtr(), y = (float*)yv.LoadEffectiveAddressAsPtr();
        switch (Simd.Path)
        {
            case SimdPath.Avx512: Forward<V512, Vector512<float>>(x, w, s, u, units, y); break;
            case SimdPath.Avx2: Forward<V256, Vector256<float>>(x, w, s, u, units, y); break;
            default: Forward<V128, Vector128<float>>(x, w, s, u, units, y); break;
        }
    }

    static void Forward<T, V>(float* x, float* w, ConvShape s, int u, int units, float* y)
        where T : struct, IVec<V> where V : struct
    {
        int c = s.C, vw = T.Width, cv = c - c % vw;
        Band(s.N * s.OH, u, units, out int r0, out int r1);
        for (int r = r0; r < r1; r++)
        {
            int n = r / s.OH, oy = r - n * s.OH;
            int ky0 = Math.Max(0, s.PadTop - oy * s.Stride), ky1 = Math.Min(s.KH, s.H + s.PadTop - oy * s.Stride);
            float* yrow = y + (long)r * s.OW * c;
            for (int ox = 0; ox < s.OW; ox++)
            {
                int ix0 = ox * s.Stride - s.PadLeft;
                int kx0 = Math.Max(0, -ix0), kx1 = Math.Min(s.KW, s.W - ix0);
                float* yo = yrow + (long)ox * c;
                for (int ch = 0; ch < cv; ch += vw)
                {
                    V acc = T.Zero;
                    for (int ky = ky0; ky < ky1; ky++)
                    {
                        float* xr = x + ((long)(n * s.H + oy * s.Stride + ky - s.PadTop) * s.W + ix0) * c + ch;
                        float* wr = w + (long)ky * s.KW * c + ch;
                        for (int kx = kx0; kx < kx1; kx++) acc = T.Fma(T.Load(xr + (long)kx * c), T.Load(wr + (long)kx * c), acc);
                    }
                    T.Store(yo + ch, acc);
                }
                for (int ch = cv; ch < c; ch++)
                {
                    float acc = 0f;
                    for (int ky = ky0; ky < ky1; ky++)
                        for (int kx = kx0; kx < kx1; kx++)
                            acc += x[((long)(n * s.H + oy * s.Stride + ky - s.PadTop) * s.W + ix0 + kx) * c + ch] * w[(ky * s.KW + kx) * c + ch];
                    yo[ch] = acc;
                }
            }
        }
    }

    [IntrinsicImplementation, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void BackwardInput(ArrayView<float> dyv, ArrayView<float> wv, ConvShape s, int u, int units, ArrayView<float> dxv)
    {
        float* dy = (float*)dyv.LoadEffectiveAddressAsPtr(), w = (float*)wv.LoadEffectiveAddressAsPtr(), dx = (float*)dxv.LoadEffectiveAddressAsPtr();
        switch (Simd.Path)
        {
            case SimdPath.Avx512: BackwardInput<V512, Vector512<float>>(dy, w, s, u, units, dx); break;
            case SimdPath.Avx2: BackwardInput<V256, Vector256<float>>(dy, w, s, u, units, dx); break;
            default: BackwardInput<V128, Vector128<float>>(dy, w, s, u, units, dx); break;
        }
    }

    /// <summary>dx[n, iy, ix, c] = sum over the output pixels whose window covers (iy, ix) of dy * w[tap].</summary>
    static void BackwardInput<T, V>(float* dy, float* w, ConvShape s, int u, int units, float* dx)
        where T : struct, IVec<V> where V : struct
    {
        int c = s.C, vw = T.Width, cv = c - c % vw;
        Band(s.N * s.H, u, units, out int r0, out int r1);
        for (int r = r0; r < r1; r++)
        {
            int n = r / s.H, iy = r - n * s.H;
            s.CoveringRows(iy, out int oy0, out int oy1);
            float* dxrow = dx + (long)r * s.W * c;
            for (int ix = 0; ix < s.W; ix++)
            {
                s.CoveringCols(ix, out int ox0, out int ox1);
                float* dxo = dxrow + (long)ix * c;
                for (int ch = 0; ch < cv; ch += vw)
                {
                    V acc = T.Zero;
                    for (int oy = oy0; oy <= oy1; oy++)
                    {
                        int ky = iy + s.PadTop - oy * s.Stride;
                        float* dyr = dy + (long)(n * s.OH + oy) * s.OW * c + ch;
                        for (int ox = ox0; ox <= ox1; ox++)
                        {
                            int kx = ix + s.PadLeft - ox * s.Stride;
                            acc = T.Fma(T.Load(dyr + (long)ox * c), T.Load(w + (ky * s.KW + kx) * c + ch), acc);
                        }
                    }
                    T.Store(dxo + ch, acc);
                }
                for (int ch = cv; ch < c; ch++)
                {
                    float acc = 0f;
                    for (int oy = oy0; oy <= oy1; oy++)
                        for (int ox = ox0; ox <= ox1; ox++)
                            acc += dy[((long)(n * s.OH + oy) * s.OW + ox) * c + ch]
                                   * w[((iy + s.PadTop - oy * s.Stride) * s.KW + ix + s.PadLeft - ox * s.Stride) * c + ch];
                    dxo[ch] = acc;
                }
            }
        }
    }

    [IntrinsicImplementation, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void BackwardWeight(ArrayView<float> xv, ArrayView<float> dyv, ConvShape s, int u, int units, ArrayView<float> pv)
    {
        float* x = (float*)xv.LoadEffectiveAddressAsPtr(), dy = (float*)dyv.LoadEffectiveAddressAsPtr();
        float* p = (float*)pv.LoadEffectiveAddressAsPtr() + (long)u * s.KH * s.KW * s.C;
        switch (Simd.Path)
        {
            case SimdPath.Avx512: BackwardWeight<V512, Vector512<float>>(x, dy, s, u, units, p); break;
            case SimdPath.Avx2: BackwardWeight<V256, Vector256<float>>(x, dy, s, u, units, p); break;
            default: BackwardWeight<V128, Vector128<float>>(x, dy, s, u, units, p); break;
        }
    }

    /// <summary>
    /// partial[ky, kx, c] = sum over this band's output pixels of x[window pixel, c] * dy[pixel, c]; for each tap
    /// and channel vector one output row is summed in a register before it meets memory.
    /// </summary>
    static void BackwardWeight<T, V>(float* x, float* dy, ConvShape s, int u, int units, float* p)
        where T : struct, IVec<V> where V : struct
    {
        int c = s.C, vw = T.Width, cv = c - c % vw;
        new Span<float>(p, s.KH * s.KW * c).Clear();
        Band(s.N * s.OH, u, units, out int r0, out int r1);
        for (int r = r0; r < r1; r++)
        {
            int n = r / s.OH, oy = r - n * s.OH;
            float* dyrow = dy + (long)r * s.OW * c;
            for (int ky = 0; ky < s.KH; ky++)
            {
                int iy = oy * s.Stride + ky - s.PadTop;
                if (iy < 0 || iy >= s.H) continue;
                float* xrow = x + (long)(n * s.H + iy) * s.W * c;
                for (int kx = 0; kx < s.KW; kx++)
                {
                    // Output columns whose tap kx lands inside the row: 0 <= ox * stride + kx - padLeft < W.
                    int lo = s.PadLeft - kx, ox0 = lo <= 0 ? 0 : (lo + s.Stride - 1) / s.Stride;
                    int ox1 = Math.Min(s.OW - 1, (s.W - 1 + s.PadLeft - kx) / s.Stride);
                    float* pt = p + (ky * s.KW + kx) * c;
                    for (int ch = 0; ch < cv; ch += vw)
                    {
                        V acc = T.Load(pt + ch);
                        for (int ox = ox0; ox <= ox1; ox++)
                            acc = T.Fma(T.Load(xrow + (long)(ox * s.Stride + kx - s.PadLeft) * c + ch), T.Load(dyrow + (long)ox * c + ch), acc);
                        T.Store(pt + ch, acc);
                    }
                    for (int ch = cv; ch < c; ch++)
                    {
                        float acc = pt[ch];
                        for (int ox = ox0; ox <= ox1; ox++)
                            acc += xrow[(long)(ox * s.Stride + kx - s.PadLeft) * c + ch] * dyrow[(long)ox * c + ch];
                        pt[ch] = acc;
                    }
                }
            }
        }
    }
}
