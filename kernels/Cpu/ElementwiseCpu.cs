namespace Xception.Gpu.Kernels.Cpu;

using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using ILGPU;
using ILGPU.IR.Intrinsics;
using ILGPU.Runtime;

/// <summary>Sizes and constants of the fused CPU batch-norm launches (one argument instead of seven).</summary>
public struct BatchNormCpuArgs
{
    /// <summary>Rows and channels of x; rows of the per-core partial sums; rows the statistics are over; launch units.</summary>
    public int Rows, Cols, PartialRows, StatRows, Units;
    public float Epsilon, Momentum;
}

/// <summary>What <see cref="ElementwiseCpuKernels.Map"/> computes for each element.</summary>
public enum MapOp
{
    /// <summary>y = max(a, 0).</summary>
    Relu,
    /// <summary>y = b where a &gt; 0, else 0 (a: the ReLU's output, b: its output gradient).</summary>
    ReluBackward,
    /// <summary>y = a + b.</summary>
    Add,
}

/// <summary>What <see cref="ElementwiseCpuKernels.ColumnPartials"/> sums over its band of rows, per channel.</summary>
public enum ColumnSum
{
    /// <summary>sum of a.</summary>
    Plain,
    /// <summary>sum of (a - p[c] / statRows)^2, p holding column sums (batch norm's variance).</summary>
    SquaredDeviation,
    /// <summary>sum of a, then sum of a * (b - p[c]) * q[c] (batch norm's dbeta and dgamma; a = dy, b = x).</summary>
    NormalizedProducts,
}

/// <summary>
/// The memory-bound ops' CPU variants (element maps, batch norm, column sums, max pooling), vectorized along the
/// contiguous channel axis; each of <c>units</c> launch indices (one per core) takes a contiguous band.
/// Column sums write one partial row per band, added afterwards in a fixed order.
/// </summary>
[CpuOnlyKernels]
public static class ElementwiseCpuKernels
{
    /// <summary>y[i] = op(a[i], b[i]) for i &lt; n, op a <see cref="MapOp"/> (b unused by Relu; y may be a or b).</summary>
    public static void Map(ArrayView<float> a, ArrayView<float> b, int n, int op, int units, ArrayView<float> y)
    {
        int step = Grids.Stride;
        for (int u = Grids.Start; u < units; u += step) ElementwiseCpu.Map(a, b, n, (MapOp)op, u, units, y);
    }

    /// <summary>
    /// Batch norm's y = (x - mean) * invstd * gamma + beta per channel, then max(y, 0) when relu is 1.
    /// x, y [rows, cols]; mean, invstd, gamma, beta [cols].
    /// </summary>
    public static void Normalize(ArrayView<float> x, ArrayView<float> mean, ArrayView<float> invstd, ArrayView<float> gamma,
        ArrayView<float> beta, int rows, int cols, int relu, int units, ArrayView<float> y)
    {
        int step = Grids.Stride;
        for (int u = Grids.Start; u < units; u += step) ElementwiseCpu.Normalize(x, mean, invstd, gamma, beta, rows, cols, relu, u, units, y);
    }

    /// <summary>
    /// Batch norm's input gradient. Training (statRows &gt; 0): dx = gamma * invstd * (dy - sums[c] / statRows -
    /// xhat * sums[cols + c] / statRows) with xhat = (x - mean) * invstd; frozen (statRows 0): dx = dy * gamma * invstd.
    /// </summary>
    public static void NormalizeBackward(ArrayView<float> dy, ArrayView<float> x, ArrayView<float> mean, ArrayView<float> invstd,
        ArrayView<float> gamma, ArrayView<float> sums, int rows, int cols, int statRows, int units, ArrayView<float> dx)
    {
        int step = Grids.Stride;
        for (int u = Grids.Start; u < units; u += step)
            ElementwiseCpu.NormalizeBackward(dy, x, mean, invstd, gamma, sums, rows, cols, statRows, u, units, dx);
    }

    /// <summary>
    /// partial[u, ...] = this band's column sums of a [rows, cols] (see <see cref="ColumnSum"/>); partial rows are cols
    /// wide, 2 cols for NormalizedProducts. For SquaredDeviation, p holds pRows rows of column sums, added first.
    /// </summary>
    public static void ColumnPartials(ArrayView<float> a, ArrayView<float> b, ArrayView<float> p, ArrayView<float> q,
        int rows, int cols, int statRows, int pRows, int kind, int units, ArrayView<float> partial)
    {
        int step = Grids.Stride;
        for (int u = Grids.Start; u < units; u += step) ElementwiseCpu.ColumnPartials(a, b, p, q, rows, cols, statRows, pRows, (ColumnSum)kind, u, units, partial);
    }

    /// <summary>
    /// Batch norm's training forward after the two column-sum launches, in one launch: every unit adds the per-core
    /// partial sums (sumPartials, then squared deviations sqPartials, [PartialRows, Cols] each, in row order) into the
    /// batch mean and 1/std; unit 0 writes them and moves the moving statistics; each unit normalizes its band.
    /// </summary>
    public static void NormalizeTraining(ArrayView<float> x, ArrayView<float> sumPartials, ArrayView<float> sqPartials,
        ArrayView<float> gamma, ArrayView<float> beta, ArrayView<float> mean, ArrayView<float> invstd,
        ArrayView<float> movingMean, ArrayView<float> movingVar, BatchNormCpuArgs args, ArrayView<float> y)
    {
        int step = Grids.Stride;
        for (int u = Grids.Start; u < args.Units; u += step)
            ElementwiseCpu.NormalizeTraining(x, sumPartials, sqPartials, gamma, beta, mean, invstd, movingMean, movingVar, args, u, y);
    }

    /// <summary>
    /// Batch norm's training backward after its column-sum launch, in one launch: every unit adds the partial
    /// [PartialRows, 2 Cols] sums (dbeta, then dgamma) in row order, unit 0 writes dbeta and dgamma, and each unit
    /// computes its band of dx as <see cref="NormalizeBackward"/> does.
    /// </summary>
    public static void NormalizeBackwardTraining(ArrayView<float> dy, ArrayView<float> x, ArrayView<float> mean, ArrayView<float> invstd,
        ArrayView<float> gamma, ArrayView<float> partial, BatchNormCpuArgs args, ArrayView<float> dbeta, ArrayView<float> dgamma, ArrayView<float> dx)
    {
        int step = Grids.Stride;
        for (int u = Grids.Start; u < args.Units; u += step)
            ElementwiseCpu.NormalizeBackwardTraining(dy, x, mean, invstd, gamma, partial, args, u, dbeta, dgamma, dx);
    }

    /// <summary>output[l] = sum over r of partial[r, l] (in order of r) + beta * output[l].</summary>
    public static void SumRows(ArrayView<float> partial, int rows, int length, float beta, int units, ArrayView<float> output)
    {
        int step = Grids.Stride;
        for (int u = Grids.Start; u < units; u += step) ElementwiseCpu.SumRows(partial, rows, length, beta, u, units, output);
    }

    /// <summary>Max pooling forward over bands of output rows; argmax (the first maximum's input index) when saveArgmax is 1.</summary>
    public static void MaxPool(ArrayView<float> x, ConvShape s, int saveArgmax, int units, ArrayView<float> y, ArrayView<int> argmax)
    {
        int step = Grids.Stride;
        for (int u = Grids.Start; u < units; u += step) ElementwiseCpu.MaxPool(x, s, saveArgmax, u, units, y, argmax);
    }

    /// <summary>Max pooling's input gradient over bands of input rows: dx[i] = sum of dy over the windows whose argmax is i.</summary>
    public static void MaxPoolBackward(ArrayView<float> dy, ArrayView<int> argmax, ConvShape s, int units, ArrayView<float> dx)
    {
        int step = Grids.Stride;
        for (int u = Grids.Start; u < units; u += step) ElementwiseCpu.MaxPoolBackward(dy, argmax, s, u, units, dx);
    }
}

internal static unsafe class ElementwiseCpu
{
    static float* P(ArrayView<float> v) => (float*)v.LoadEffectiveAddressAsPtr();

    [IntrinsicImplementation, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Map(ArrayView<float> a, ArrayView<float> b, int n, MapOp op, int u, int units, ArrayView<float> y)
    {
        // Bands of whole vectors (64 floats), so that no two units share a cache line's worth of output.
        CpuBands.Of((n + 63) / 64, u, units, out int b0, out int b1);
        int i0 = b0 * 64, i1 = Math.Min(n, b1 * 64);
        float* pa = P(a), pb = P(b), py = P(y);
        switch (Simd.Path)
        {
            case SimdPath.Avx512: Map<V512, Vector512<float>>(pa, pb, i0, i1, op, py); break;
            case SimdPath.Avx2: Map<V256, Vector256<float>>(pa, pb, i0, i1, op, py); break;
            default: Map<V128, Vector128<float>>(pa, pb, i0, i1, op, py); break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Map<T, V>(float* a, float* b, int i0, int i1, MapOp op, float* y) where T : struct, IVec<V> where V : struct
    {
        int w = T.Width, i = i0, iv = i0 + (i1 - i0) / w * w;
        switch (op)
        {
            case MapOp.Relu:
                for (; i < iv; i += w) T.Store(y + i, T.Max(T.Load(a + i), T.Zero));
                for (; i < i1; i++) y[i] = a[i] > 0f ? a[i] : 0f;
                break;
            case MapOp.ReluBackward:
                for (; i < iv; i += w) T.Store(y + i, T.WherePositive(T.Load(a + i), T.Load(b + i)));
                for (; i < i1; i++) y[i] = a[i] > 0f ? b[i] : 0f;
                break;
            default:
                for (; i < iv; i += w) T.Store(y + i, T.Add(T.Load(a + i), T.Load(b + i)));
                for (; i < i1; i++) y[i] = a[i] + b[i];
                break;
        }
    }

    [IntrinsicImplementation, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Normalize(ArrayView<float> x, ArrayView<float> mean, ArrayView<float> invstd, ArrayView<float> gamma,
        ArrayView<float> beta, int rows, int cols, int relu, int u, int units, ArrayView<float> y)
    {
        CpuBands.Of(rows, u, units, out int r0, out int r1);
        // Per channel: y = (x - mean) * scale + beta with scale = invstd * gamma (centred first: no cancellation
        // when the mean is large against the spread).
        float* scale = stackalloc float[cols];
        float* pm = P(mean), pi = P(invstd), pg = P(gamma), pbt = P(beta);
        for (int c = 0; c < cols; c++) scale[c] = pi[c] * pg[c];
        switch (Simd.Path)
        {
            case SimdPath.Avx512: Affine<V512, Vector512<float>>(P(x), pm, scale, pbt, r0, r1, cols, relu != 0, P(y)); break;
            case SimdPath.Avx2: Affine<V256, Vector256<float>>(P(x), pm, scale, pbt, r0, r1, cols, relu != 0, P(y)); break;
            default: Affine<V128, Vector128<float>>(P(x), pm, scale, pbt, r0, r1, cols, relu != 0, P(y)); break;
        }
    }

    [IntrinsicImplementation, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void NormalizeTraining(ArrayView<float> x, ArrayView<float> sumPartials, ArrayView<float> sqPartials,
        ArrayView<float> gamma, ArrayView<float> beta, ArrayView<float> mean, ArrayView<float> invstd,
        ArrayView<float> movingMean, ArrayView<float> movingVar, BatchNormCpuArgs args, int u, ArrayView<float> y)
    {
        int cols = args.Cols;
        CpuBands.Of(args.Rows, u, args.Units, out int r0, out int r1);
        float* m = stackalloc float[cols];
        float* scale = stackalloc float[cols];
        float* sp = P(sumPartials), qp = P(sqPartials), pg = P(gamma);
        float* pm = P(mean), pi = P(invstd), mm = P(movingMean), mv = P(movingVar);
        float momentum = args.Momentum;
        for (int c = 0; c < cols; c++)
        {
            float sum = 0f, sq = 0f;
            for (long r = 0; r < args.PartialRows; r++)
            {
                sum += sp[r * cols + c];
                sq += qp[r * cols + c];
            }
            // As BatchNormKernels.Statistics: batch mean, biased variance, 1 / sqrt(variance + epsilon).
            float mc = sum / args.StatRows, v = sq / args.StatRows, istd = 1f / MathF.Sqrt(v + args.Epsilon);
            m[c] = mc;
            scale[c] = istd * pg[c];
            if (u == 0)
            {
                pm[c] = mc;
                pi[c] = istd;
                mm[c] = momentum * mm[c] + (1f - momentum) * mc;
                mv[c] = momentum * mv[c] + (1f - momentum) * v;
            }
        }
        switch (Simd.Path)
        {
            case SimdPath.Avx512: Affine<V512, Vector512<float>>(P(x), m, scale, P(beta), r0, r1, cols, false, P(y)); break;
            case SimdPath.Avx2: Affine<V256, Vector256<float>>(P(x), m, scale, P(beta), r0, r1, cols, false, P(y)); break;
            default: Affine<V128, Vector128<float>>(P(x), m, scale, P(beta), r0, r1, cols, false, P(y)); break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Affine<T, V>(float* x, float* mean, float* scale, float* beta, int r0, int r1, int cols, bool relu, float* y)
        where T : struct, IVec<V> where V : struct
    {
        int w = T.Width, cv = cols - cols % w;
        for (long r = r0; r < r1; r++)
        {
            float* xr = x + r * cols, yr = y + r * cols;
            int c = 0;
            for (; c < cv; c += w)
            {
                V v = T.Fma(T.Sub(T.Load(xr + c), T.Load(mean + c)), T.Load(scale + c), T.Load(beta + c));
                T.Store(yr + c, relu ? T.Max(v, T.Zero) : v);
            }
            for (; c < cols; c++)
            {
                float v = (xr[c] - mean[c]) * scale[c] + beta[c];
                yr[c] = relu && v < 0f ? 0f : v;
            }
        }
    }

    [IntrinsicImplementation, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void NormalizeBackward(ArrayView<float> dy, ArrayView<float> x, ArrayView<float> mean, ArrayView<float> invstd,
        ArrayView<float> gamma, ArrayView<float> sums, int rows, int cols, int statRows, int u, int units, ArrayView<float> dx) =>
        BackwardBand(P(dy), statRows == 0 ? null : P(x), statRows == 0 ? null : P(mean), P(invstd), P(gamma),
            statRows == 0 ? null : P(sums), rows, cols, statRows, u, units, P(dx));

    [IntrinsicImplementation, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void NormalizeBackwardTraining(ArrayView<float> dy, ArrayView<float> x, ArrayView<float> mean, ArrayView<float> invstd,
        ArrayView<float> gamma, ArrayView<float> partial, BatchNormCpuArgs args, int u, ArrayView<float> dbeta, ArrayView<float> dgamma, ArrayView<float> dx)
    {
        int cols = args.Cols;
        float* sums = stackalloc float[2 * cols];
        float* pp = P(partial);
        for (int c = 0; c < 2 * cols; c++)
        {
            float sum = 0f;
            for (long r = 0; r < args.PartialRows; r++) sum += pp[r * 2 * cols + c];
            sums[c] = sum;
        }
        if (u == 0)
        {
            new ReadOnlySpan<float>(sums, cols).CopyTo(new Span<float>(P(dbeta), cols));
            new ReadOnlySpan<float>(sums + cols, cols).CopyTo(new Span<float>(P(dgamma), cols));
        }
        BackwardBand(P(dy), P(x), P(mean), P(invstd), P(gamma), sums, args.Rows, cols, args.StatRows, u, args.Units, P(dx));
    }

    /// <summary>One unit's band of batch norm's dx; x, mean and sums are null for the frozen form (statRows 0).</summary>
    static void BackwardBand(float* dy, float* x, float* mean, float* pi, float* pg, float* ps, int rows, int cols, int statRows,
        int u, int units, float* dx)
    {
        CpuBands.Of(rows, u, units, out int r0, out int r1);
        // Per channel, training: dx = (dy - a) * gi + (x - mean) * q with gi = gamma * invstd, a = sums[c] / statRows,
        // q = -gi * invstd * sums[cols + c] / statRows; frozen: dx = dy * gi.
        float* k = stackalloc float[3 * cols];
        bool frozen = statRows == 0;
        for (int c = 0; c < cols; c++)
        {
            float gi = pg[c] * pi[c];
            k[c] = gi;
            if (!frozen)
            {
                float inv = 1f / statRows;
                k[cols + c] = ps[c] * inv;
                k[2 * cols + c] = -gi * pi[c] * ps[cols + c] * inv;
            }
        }
        switch (Simd.Path)
        {
            case SimdPath.Avx512: Backward<V512, Vector512<float>>(dy, x, mean, k, r0, r1, cols, dx); break;
            case SimdPath.Avx2: Backward<V256, Vector256<float>>(dy, x, mean, k, r0, r1, cols, dx); break;
            default: Backward<V128, Vector128<float>>(dy, x, mean, k, r0, r1, cols, dx); break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Backward<T, V>(float* dy, float* x, float* mean, float* k, int r0, int r1, int cols, float* dx)
        where T : struct, IVec<V> where V : struct
    {
        int w = T.Width, cv = cols - cols % w;
        float* ka = k + cols, kq = k + 2 * cols;
        for (long r = r0; r < r1; r++)
        {
            float* gr = dy + r * cols, dr = dx + r * cols;
            int c = 0;
            if (x is null)
            {
                for (; c < cv; c += w) T.Store(dr + c, T.Mul(T.Load(gr + c), T.Load(k + c)));
                for (; c < cols; c++) dr[c] = gr[c] * k[c];
                continue;
            }
            float* xr = x + r * cols;
            for (; c < cv; c += w)
                T.Store(dr + c, T.Fma(T.Sub(T.Load(xr + c), T.Load(mean + c)), T.Load(kq + c),
                    T.Mul(T.Sub(T.Load(gr + c), T.Load(ka + c)), T.Load(k + c))));
            for (; c < cols; c++) dr[c] = (xr[c] - mean[c]) * kq[c] + (gr[c] - ka[c]) * k[c];
        }
    }

    [IntrinsicImplementation, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ColumnPartials(ArrayView<float> a, ArrayView<float> b, ArrayView<float> p, ArrayView<float> q,
        int rows, int cols, int statRows, int pRows, ColumnSum kind, int u, int units, ArrayView<float> partial)
    {
        CpuBands.Of(rows, u, units, out int r0, out int r1);
        int width = kind == ColumnSum.NormalizedProducts ? 2 * cols : cols;
        float* outp = P(partial) + (long)u * width;
        new Span<float>(outp, width).Clear();
        // The centre subtracted per channel: the mean for the squared deviations, the given mean for the products.
        float* m = null;
        if (kind == ColumnSum.SquaredDeviation)
        {
            float* centre = stackalloc float[cols];
            float* ps = P(p);
            for (int c = 0; c < cols; c++)
            {
                float sum = 0f;
                for (long r = 0; r < pRows; r++) sum += ps[r * cols + c];
                centre[c] = sum * (1f / statRows);
            }
            m = centre;
        }
        else if (kind == ColumnSum.NormalizedProducts) m = P(p);
        float* pb = kind == ColumnSum.NormalizedProducts ? P(b) : null, pq = kind == ColumnSum.NormalizedProducts ? P(q) : null;
        switch (Simd.Path)
        {
            case SimdPath.Avx512: Columns<V512, Vector512<float>>(P(a), pb, m, pq, r0, r1, cols, kind, outp); break;
            case SimdPath.Avx2: Columns<V256, Vector256<float>>(P(a), pb, m, pq, r0, r1, cols, kind, outp); break;
            default: Columns<V128, Vector128<float>>(P(a), pb, m, pq, r0, r1, cols, kind, outp); break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Columns<T, V>(float* a, float* b, float* m, float* q, int r0, int r1, int cols, ColumnSum kind, float* o)
        where T : struct, IVec<V> where V : struct
    {
        int w = T.Width, cv = cols - cols % w;
        // Channel vector outermost would stride through memory; rows outermost, with the partial row (cols or
        // 2 cols floats, in L1/L2) as the accumulator, streams a and b once.
        for (long r = r0; r < r1; r++)
        {
            float* ar = a + r * cols;
            int c = 0;
            switch (kind)
            {
                case ColumnSum.Plain:
                    for (; c < cv; c += w) T.Store(o + c, T.Add(T.Load(o + c), T.Load(ar + c)));
                    for (; c < cols; c++) o[c] += ar[c];
                    break;
                case ColumnSum.SquaredDeviation:
                    for (; c < cv; c += w)
                    {
                        V dv = T.Sub(T.Load(ar + c), T.Load(m + c));
                        T.Store(o + c, T.Fma(dv, dv, T.Load(o + c)));
                    }
                    for (; c < cols; c++) { float dv = ar[c] - m[c]; o[c] += dv * dv; }
                    break;
                default:
                    float* br = b + r * cols;
                    float* o2 = o + cols;
                    for (; c < cv; c += w)
                    {
                        V g = T.Load(ar + c);
                        T.Store(o + c, T.Add(T.Load(o + c), g));
                        T.Store(o2 + c, T.Fma(T.Mul(g, T.Sub(T.Load(br + c), T.Load(m + c))), T.Load(q + c), T.Load(o2 + c)));
                    }
                    for (; c < cols; c++) { float g = ar[c]; o[c] += g; o2[c] += g * (br[c] - m[c]) * q[c]; }
                    break;
            }
        }
    }

    [IntrinsicImplementation, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SumRows(ArrayView<float> partial, int rows, int length, float beta, int u, int units, ArrayView<float> output)
    {
        CpuBands.Of((length + 63) / 64, u, units, out int b0, out int b1);
        int l0 = b0 * 64, l1 = Math.Min(length, b1 * 64);
        float* p = P(partial), o = P(output);
        for (int l = l0; l < l1; l++)
        {
            float s = 0f;
            for (long r = 0; r < rows; r++) s += p[r * length + l];
            o[l] = beta != 0f ? s + beta * o[l] : s;
        }
    }

    [IntrinsicImplementation, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MaxPool(ArrayView<float> xv, ConvShape s, int saveArgmax, int u, int units, ArrayView<float> yv, ArrayView<int> argmaxv)
    {
        float* x = P(xv), y = P(yv);
        int* am = saveArgmax != 0 ? (int*)argmaxv.LoadEffectiveAddressAsPtr() : null;
        if (am is null)
        {
            switch (Simd.Path)
            {
                case SimdPath.Avx512: MaxPool<V512, Vector512<float>>(x, s, u, units, y); return;
                case SimdPath.Avx2: MaxPool<V256, Vector256<float>>(x, s, u, units, y); return;
                default: MaxPool<V128, Vector128<float>>(x, s, u, units, y); return;
            }
        }
        switch (Simd.Path)
        {
            case SimdPath.Avx512: MaxPoolArgmax<V512, Vector512<float>>(x, s, u, units, y, am); return;
            case SimdPath.Avx2: MaxPoolArgmax<V256, Vector256<float>>(x, s, u, units, y, am); return;
            default: MaxPoolArgmax<V128, Vector128<float>>(x, s, u, units, y, am); return;
        }
    }

    /// <summary>
    /// Training's max pooling: maxima and the input index of each window's first maximum, vectorized over channels
    /// (indices ride in the float lanes as int bits). The first tap in the window seeds both, later taps replace
    /// them only when strictly greater: the scalar kernel's tie rule.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void MaxPoolArgmax<T, V>(float* x, ConvShape s, int u, int units, float* y, int* am) where T : struct, IVec<V> where V : struct
    {
        int c = s.C, w = T.Width, cv = c - c % w;
        CpuBands.Of(s.N * s.OH, u, units, out int r0, out int r1);
        for (int r = r0; r < r1; r++)
        {
            int n = r / s.OH, oy = r - n * s.OH;
            int ky0 = Math.Max(0, s.PadTop - oy * s.Stride), ky1 = Math.Min(s.KH, s.H + s.PadTop - oy * s.Stride);
            for (int ox = 0; ox < s.OW; ox++)
            {
                int ix0 = ox * s.Stride - s.PadLeft;
                int kx0 = Math.Max(0, -ix0), kx1 = Math.Min(s.KW, s.W - ix0);
                long o = ((long)r * s.OW + ox) * c;
                int first = ((n * s.H + oy * s.Stride + ky0 - s.PadTop) * s.W + ix0 + kx0) * c;
                for (int ch = 0; ch < cv; ch += w)
                {
                    V best = T.Load(x + first + ch), at = T.IntLanes(first + ch);
                    for (int ky = ky0; ky < ky1; ky++)
                        for (int kx = kx0; kx < kx1; kx++)
                        {
                            int i = ((n * s.H + oy * s.Stride + ky - s.PadTop) * s.W + ix0 + kx) * c + ch;
                            V v = T.Load(x + i);
                            at = T.WhereGreater(v, best, T.IntLanes(i), at);
                            best = T.WhereGreater(v, best, v, best);
                        }
                    T.Store(y + o + ch, best);
                    T.Store((float*)(am + o + ch), at);
                }
                for (int ch = cv; ch < c; ch++)
                {
                    float best = x[first + ch];
                    int at = first + ch;
                    for (int ky = ky0; ky < ky1; ky++)
                        for (int kx = kx0; kx < kx1; kx++)
                        {
                            int i = ((n * s.H + oy * s.Stride + ky - s.PadTop) * s.W + ix0 + kx) * c + ch;
                            if (x[i] > best) { best = x[i]; at = i; }
                        }
                    y[o + ch] = best;
                    am[o + ch] = at;
                }
            }
        }
    }

    /// <summary>Inference's max pooling: window maxima, vectorized over channels (no argmax).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void MaxPool<T, V>(float* x, ConvShape s, int u, int units, float* y) where T : struct, IVec<V> where V : struct
    {
        int c = s.C, w = T.Width, cv = c - c % w;
        CpuBands.Of(s.N * s.OH, u, units, out int r0, out int r1);
        for (int r = r0; r < r1; r++)
        {
            int n = r / s.OH, oy = r - n * s.OH;
            int ky0 = Math.Max(0, s.PadTop - oy * s.Stride), ky1 = Math.Min(s.KH, s.H + s.PadTop - oy * s.Stride);
            for (int ox = 0; ox < s.OW; ox++)
            {
                int ix0 = ox * s.Stride - s.PadLeft;
                int kx0 = Math.Max(0, -ix0), kx1 = Math.Min(s.KW, s.W - ix0);
                float* yo = y + ((long)r * s.OW + ox) * c;
                for (int ch = 0; ch < cv; ch += w)
                {
                    V best = T.Splat(float.NegativeInfinity);
                    for (int ky = ky0; ky < ky1; ky++)
                    {
                        float* xr = x + ((long)(n * s.H + oy * s.Stride + ky - s.PadTop) * s.W + ix0) * c + ch;
                        for (int kx = kx0; kx < kx1; kx++) best = T.Max(best, T.Load(xr + (long)kx * c));
                    }
                    T.Store(yo + ch, best);
                }
                for (int ch = cv; ch < c; ch++)
                {
                    float best = float.NegativeInfinity;
                    for (int ky = ky0; ky < ky1; ky++)
                        for (int kx = kx0; kx < kx1; kx++)
                            best = Math.Max(best, x[((long)(n * s.H + oy * s.Stride + ky - s.PadTop) * s.W + ix0 + kx) * c + ch]);
                    yo[ch] = best;
                }
            }
        }
    }

    [IntrinsicImplementation, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MaxPoolBackward(ArrayView<float> dyv, ArrayView<int> argmaxv, ConvShape s, int u, int units, ArrayView<float> dxv)
    {
        float* dy = P(dyv), dx = P(dxv);
        int* am = (int*)argmaxv.LoadEffectiveAddressAsPtr();
        switch (Simd.Path)
        {
            case SimdPath.Avx512: MaxPoolBackward<V512, Vector512<float>>(dy, am, s, u, units, dx); return;
            case SimdPath.Avx2: MaxPoolBackward<V256, Vector256<float>>(dy, am, s, u, units, dx); return;
            default: MaxPoolBackward<V128, Vector128<float>>(dy, am, s, u, units, dx); return;
        }
    }

    /// <summary>
    /// dx[i] = sum of dy over the covering windows whose argmax is i, vectorized over channels (the argmax lanes
    /// compared as ints with the pixel's own indices); a gather per input row, so no two cores write one pixel.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void MaxPoolBackward<T, V>(float* dy, int* am, ConvShape s, int u, int units, float* dx) where T : struct, IVec<V> where V : struct
    {
        int c = s.C, w = T.Width, cv = c - c % w;
        CpuBands.Of(s.N * s.H, u, units, out int r0, out int r1);
        for (int r = r0; r < r1; r++)
        {
            int n = r / s.H, iy = r - n * s.H;
            s.CoveringRows(iy, out int oy0, out int oy1);
            for (int ix = 0; ix < s.W; ix++)
            {
                s.CoveringCols(ix, out int ox0, out int ox1);
                int t0 = (r * s.W + ix) * c;
                for (int ch = 0; ch < cv; ch += w)
                {
                    V acc = T.Zero, self = T.IntLanes(t0 + ch);
                    for (int oy = oy0; oy <= oy1; oy++)
                        for (int ox = ox0; ox <= ox1; ox++)
                        {
                            int o = ((n * s.OH + oy) * s.OW + ox) * c + ch;
                            acc = T.Add(acc, T.WhereSameInt(T.Load((float*)(am + o)), self, T.Load(dy + o)));
                        }
                    T.Store(dx + t0 + ch, acc);
                }
                for (int ch = cv; ch < c; ch++)
                {
                    float acc = 0f;
                    for (int oy = oy0; oy <= oy1; oy++)
                        for (int ox = ox0; ox <= ox1; ox++)
                        {
                            int o = ((n * s.OH + oy) * s.OW + ox) * c + ch;
                            if (am[o] == t0 + ch) acc += dy[o];
                        }
                    dx[t0 + ch] = acc;
                }
            }
        }
    }
}
