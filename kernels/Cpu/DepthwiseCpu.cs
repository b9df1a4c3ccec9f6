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

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Forward<T, V>(float* x, float* w, ConvShape s, int u, int units, float* y)
        where T : struct, IVec<V> where V : struct
    {
        int c = s.C, vw = T.Width, cv = c - c % vw;
        CpuBands.Of(s.N * s.OH, u, units, out int r0, out int r1);
        for (int r = r0; r < r1; r++)
        {
            int n = r / s.OH, oy = r - n * s.OH;
            int ky0 = Math.Max(0, s.PadTop - oy * s.Stride), ky1 = Math.Min(s.KH, s.H + s.PadTop - oy * s.Stride);
            float* yrow = y + (long)r * s.OW * c;
            if (s.KH == 3 && s.KW == 3 && ky0 == 0 && ky1 == 3)
                Row3x3<T, V>(x + ((long)(n * s.H + oy * s.Stride - s.PadTop) * s.W) * c, w, c, s.W, c, s.Stride, s.PadLeft, s.OW, yrow);
            else
                RowAny<T, V>(x, w, s, n, oy, ky0, ky1, yrow);
        }
    }

    /// <summary>
    /// One output row of a 3 x 3 window whose three input rows (from <paramref name="x0"/>) all exist: per channel
    /// vector the nine weights stay in registers while the row is swept; pixels whose window lies inside the row
    /// take nine fixed-offset loads, the (at most two) edge pixels the general loop. Tap t's weights are at
    /// w + t * wStep: wStep = -C from the last tap runs the window rotated by 180 degrees (the input gradient).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Row3x3<T, V>(float* x0, float* w, long wStep, int width, int c, int stride, int padLeft, int ow, float* yrow)
        where T : struct, IVec<V> where V : struct
    {
        int vw = T.Width, cv = c - c % vw;
        long rs = (long)width * c;
        for (int ch = 0; ch < cv; ch += vw)
        {
            V w0 = T.Load(w + ch), w1 = T.Load(w + wStep + ch), w2 = T.Load(w + 2 * wStep + ch);
            V w3 = T.Load(w + 3 * wStep + ch), w4 = T.Load(w + 4 * wStep + ch), w5 = T.Load(w + 5 * wStep + ch);
            V w6 = T.Load(w + 6 * wStep + ch), w7 = T.Load(w + 7 * wStep + ch), w8 = T.Load(w + 8 * wStep + ch);
            for (int ox = 0; ox < ow; ox++)
            {
                int ix0 = ox * stride - padLeft;
                V acc;
                if (ix0 >= 0 && ix0 + 3 <= width)
                {
                    float* p = x0 + (long)ix0 * c + ch;
                    acc = T.Mul(T.Load(p), w0);
                    acc = T.Fma(T.Load(p + c), w1, acc);
                    acc = T.Fma(T.Load(p + 2 * c), w2, acc);
                    acc = T.Fma(T.Load(p + rs), w3, acc);
                    acc = T.Fma(T.Load(p + rs + c), w4, acc);
                    acc = T.Fma(T.Load(p + rs + 2 * c), w5, acc);
                    acc = T.Fma(T.Load(p + 2 * rs), w6, acc);
                    acc = T.Fma(T.Load(p + 2 * rs + c), w7, acc);
                    acc = T.Fma(T.Load(p + 2 * rs + 2 * c), w8, acc);
                }
                else
                {
                    acc = T.Zero;
                    int kx0 = Math.Max(0, -ix0), kx1 = Math.Min(3, width - ix0);
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = kx0; kx < kx1; kx++)
                            acc = T.Fma(T.Load(x0 + ky * rs + (long)(ix0 + kx) * c + ch), T.Load(w + (ky * 3 + kx) * wStep + ch), acc);
                }
                T.Store(yrow + (long)ox * c + ch, acc);
            }
        }
        for (int ch = cv; ch < c; ch++)
            for (int ox = 0; ox < ow; ox++)
            {
                int ix0 = ox * stride - padLeft;
                int kx0 = Math.Max(0, -ix0), kx1 = Math.Min(3, width - ix0);
                float acc = 0f;
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = kx0; kx < kx1; kx++)
                        acc += x0[ky * rs + (long)(ix0 + kx) * c + ch] * w[(ky * 3 + kx) * wStep + ch];
                yrow[(long)ox * c + ch] = acc;
            }
    }

    /// <summary>One output row of any window (rows at the top and bottom edges, windows other than 3 x 3).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void RowAny<T, V>(float* x, float* w, ConvShape s, int n, int oy, int ky0, int ky1, float* yrow)
        where T : struct, IVec<V> where V : struct
    {
        int c = s.C, vw = T.Width, cv = c - c % vw;
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
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void BackwardInput<T, V>(float* dy, float* w, ConvShape s, int u, int units, float* dx)
        where T : struct, IVec<V> where V : struct
    {
        int c = s.C, vw = T.Width, cv = c - c % vw;
        CpuBands.Of(s.N * s.H, u, units, out int r0, out int r1);
        for (int r = r0; r < r1; r++)
        {
            int n = r / s.H, iy = r - n * s.H;
            s.CoveringRows(iy, out int oy0, out int oy1);
            float* dxrow = dx + (long)r * s.W * c;
            if (s.KH == 3 && s.KW == 3 && s.Stride == 1 && oy1 - oy0 == 2)
            {
                // Stride 1: the input gradient is the forward over dy with the window rotated by 180 degrees.
                Row3x3<T, V>(dy + (long)(n * s.OH + oy0) * s.OW * c, w + 8 * c, -c, s.OW, c, 1, 2 - s.PadLeft, s.W, dxrow);
                continue;
            }
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
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void BackwardWeight<T, V>(float* x, float* dy, ConvShape s, int u, int units, float* p)
        where T : struct, IVec<V> where V : struct
    {
        int c = s.C, vw = T.Width, cv = c - c % vw;
        new Span<float>(p, s.KH * s.KW * c).Clear();
        CpuBands.Of(s.N * s.OH, u, units, out int r0, out int r1);
        for (int r = r0; r < r1; r++)
        {
            int n = r / s.OH, oy = r - n * s.OH;
            float* dyrow = dy + (long)r * s.OW * c;
            int iyTop = oy * s.Stride - s.PadTop;
            if (s.KH == 3 && s.KW == 3 && iyTop >= 0 && iyTop + 3 <= s.H)
            {
                WeightRow3x3<T, V>(x + (long)(n * s.H + iyTop) * s.W * c, dyrow, s.W, c, s.Stride, s.PadLeft, s.OW, p);
                continue;
            }
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

    /// <summary>
    /// partial[tap, c] += one output row's x[window pixel] * dy for a 3 x 3 window whose three input rows exist: per
    /// channel vector the nine sums stay in registers across the row, so dy is read once instead of nine times.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void WeightRow3x3<T, V>(float* x0, float* dyrow, int width, int c, int stride, int padLeft, int ow, float* p)
        where T : struct, IVec<V> where V : struct
    {
        int vw = T.Width, cv = c - c % vw;
        long rs = (long)width * c;
        for (int ch = 0; ch < cv; ch += vw)
        {
            V a0 = T.Zero, a1 = T.Zero, a2 = T.Zero, a3 = T.Zero, a4 = T.Zero, a5 = T.Zero, a6 = T.Zero, a7 = T.Zero, a8 = T.Zero;
            for (int ox = 0; ox < ow; ox++)
            {
                int ix0 = ox * stride - padLeft;
                V g = T.Load(dyrow + (long)ox * c + ch);
                if (ix0 >= 0 && ix0 + 3 <= width)
                {
                    float* q = x0 + (long)ix0 * c + ch;
                    a0 = T.Fma(T.Load(q), g, a0);
                    a1 = T.Fma(T.Load(q + c), g, a1);
                    a2 = T.Fma(T.Load(q + 2 * c), g, a2);
                    a3 = T.Fma(T.Load(q + rs), g, a3);
                    a4 = T.Fma(T.Load(q + rs + c), g, a4);
                    a5 = T.Fma(T.Load(q + rs + 2 * c), g, a5);
                    a6 = T.Fma(T.Load(q + 2 * rs), g, a6);
                    a7 = T.Fma(T.Load(q + 2 * rs + c), g, a7);
                    a8 = T.Fma(T.Load(q + 2 * rs + 2 * c), g, a8);
                }
                else
                {
                    // An edge pixel: its taps straight into the partial (at most two pixels a row).
                    int kx0 = Math.Max(0, -ix0), kx1 = Math.Min(3, width - ix0);
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = kx0; kx < kx1; kx++)
                        {
                            float* pt = p + (ky * 3 + kx) * c + ch;
                            T.Store(pt, T.Fma(T.Load(x0 + ky * rs + (long)(ix0 + kx) * c + ch), g, T.Load(pt)));
                        }
                }
            }
            T.Store(p + ch, T.Add(T.Load(p + ch), a0));
            T.Store(p + c + ch, T.Add(T.Load(p + c + ch), a1));
            T.Store(p + 2 * c + ch, T.Add(T.Load(p + 2 * c + ch), a2));
            T.Store(p + 3 * c + ch, T.Add(T.Load(p + 3 * c + ch), a3));
            T.Store(p + 4 * c + ch, T.Add(T.Load(p + 4 * c + ch), a4));
            T.Store(p + 5 * c + ch, T.Add(T.Load(p + 5 * c + ch), a5));
            T.Store(p + 6 * c + ch, T.Add(T.Load(p + 6 * c + ch), a6));
            T.Store(p + 7 * c + ch, T.Add(T.Load(p + 7 * c + ch), a7));
            T.Store(p + 8 * c + ch, T.Add(T.Load(p + 8 * c + ch), a8));
        }
        for (int ch = cv; ch < c; ch++)
            for (int ox = 0; ox < ow; ox++)
            {
                int ix0 = ox * stride - padLeft;
                int kx0 = Math.Max(0, -ix0), kx1 = Math.Min(3, width - ix0);
                float g = dyrow[(long)ox * c + ch];
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = kx0; kx < kx1; kx++)
                        p[(ky * 3 + kx) * c + ch] += x0[ky * rs + (long)(ix0 + kx) * c + ch] * g;
            }
    }
}
