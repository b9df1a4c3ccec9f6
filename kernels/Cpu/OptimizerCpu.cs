namespace Xception.Gpu.Kernels.Cpu;

using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using ILGPU;
using ILGPU.IR.Intrinsics;
using ILGPU.Runtime;

/// <summary>
/// One parameter tensor of a fused CPU update: the addresses of its values, gradient and optimizer slots in the CPU
/// accelerator's memory (which is host memory at a fixed address for the buffer's life), its length and weight decay.
/// </summary>
public struct OptimizerCpuRow
{
    /// <summary>Addresses of the values, the gradient, the first slot (velocity, or RMSprop's mean square) and the second (RMSprop's momentum; 0 for SGD).</summary>
    public long W, G, A, B;
    public int Length;
    public float WeightDecay;
}

/// <summary>The settings of one fused update (one argument instead of eight).</summary>
public struct OptimizerCpuArgs
{
    /// <summary>Rows of the table; elements over all rows; launch units.</summary>
    public int Rows, Units;
    public long Total;
    /// <summary>0: SGD (Momentum, Nesterov); 1: RMSprop (Rho, Momentum, Epsilon).</summary>
    public int Kind, Nesterov;
    public float Lr, Momentum, Rho, Epsilon;
}

/// <summary>
/// The optimizer's CPU variant: every parameter tensor of a model updated in one launch (see
/// <see cref="OptimizerKernels"/> for the per-tensor kernels). A model has about a hundred parameter tensors, most
/// of them small, and a launch on the CPU accelerator costs 0.1 to 0.8 ms, so one launch per tensor cost more than the
/// arithmetic. The tensors are seen as one concatenation, cut into one contiguous band per core; the arithmetic is
/// the per-tensor kernels', operation for operation (no fused multiply-adds), so both give the same bits.
/// </summary>
[CpuOnlyKernels]
public static class OptimizerCpuKernels
{
    public static void Update(ArrayView<OptimizerCpuRow> table, OptimizerCpuArgs args)
    {
        int step = Grids.Stride;
        for (int u = Grids.Start; u < args.Units; u += step) OptimizerCpu.Update(table, args, u);
    }
}

internal static unsafe class OptimizerCpu
{
    [IntrinsicImplementation, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Update(ArrayView<OptimizerCpuRow> tableView, OptimizerCpuArgs args, int u)
    {
        var table = (OptimizerCpuRow*)tableView.LoadEffectiveAddressAsPtr();
        // This unit's band of the concatenation, in whole blocks of 64 floats: every element is updated by exactly one unit.
        long blocks = (args.Total + 63) / 64;
        long b0 = blocks * u / args.Units * 64, b1 = Math.Min(args.Total, blocks * (u + 1) / args.Units * 64);
        long start = 0;
        for (int r = 0; r < args.Rows && start < b1; r++)
        {
            var row = table[r];
            long end = start + row.Length;
            long i0 = Math.Max(b0, start) - start, i1 = Math.Min(b1, end) - start;
            if (i0 < i1)
            {
                float* w = (float*)row.W, g = (float*)row.G, a = (float*)row.A, b = (float*)row.B;
                switch (Simd.Path)
                {
                    case SimdPath.Avx512: Band<V512, Vector512<float>>(w, g, a, b, i0, i1, row.WeightDecay, args); break;
                    case SimdPath.Avx2: Band<V256, Vector256<float>>(w, g, a, b, i0, i1, row.WeightDecay, args); break;
                    default: Band<V128, Vector128<float>>(w, g, a, b, i0, i1, row.WeightDecay, args); break;
                }
            }
            start = end;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Band<T, V>(float* w, float* g, float* a, float* b, long i0, long i1, float wd, OptimizerCpuArgs args)
        where T : struct, IVec<V> where V : struct
    {
        long i = i0, iv = i0 + (i1 - i0) / T.Width * T.Width;
        float lr = args.Lr, m = args.Momentum;
        V vwd = T.Splat(wd), vlr = T.Splat(lr), vm = T.Splat(m);
        if (args.Kind == 0)
        {
            bool nesterov = args.Nesterov != 0;
            for (; i < iv; i += T.Width)
            {
                V wi = T.Load(w + i);
                V grad = T.Add(T.Load(g + i), T.Mul(vwd, wi));
                V lg = T.Mul(vlr, grad);
                V vel = T.Sub(T.Mul(vm, T.Load(a + i)), lg);
                T.Store(a + i, vel);
                T.Store(w + i, T.Add(wi, nesterov ? T.Sub(T.Mul(vm, vel), lg) : vel));
            }
            for (; i < i1; i++)
            {
                float grad = g[i] + wd * w[i];
                float vel = m * a[i] - lr * grad;
                a[i] = vel;
                w[i] += nesterov ? m * vel - lr * grad : vel;
            }
            return;
        }
        float rho = args.Rho, eps = args.Epsilon;
        V vrho = T.Splat(rho), vrest = T.Splat(1f - rho), veps = T.Splat(eps);
        for (; i < iv; i += T.Width)
        {
            V wi = T.Load(w + i);
            V grad = T.Add(T.Load(g + i), T.Mul(vwd, wi));
            V s = T.Add(T.Mul(vrho, T.Load(a + i)), T.Mul(T.Mul(vrest, grad), grad));
            T.Store(a + i, s);
            V delta = T.Div(T.Mul(vlr, grad), T.Sqrt(T.Add(s, veps)));
            if (m != 0f)
            {
                delta = T.Add(delta, T.Mul(vm, T.Load(b + i)));
                T.Store(b + i, delta);
            }
            T.Store(w + i, T.Sub(wi, delta));
        }
        for (; i < i1; i++)
        {
            float grad = g[i] + wd * w[i];
            float s = rho * a[i] + (1f - rho) * grad * grad;
            a[i] = s;
            float delta = lr * grad / MathF.Sqrt(s + eps);
            if (m != 0f)
            {
                delta += m * b[i];
                b[i] = delta;
            }
            w[i] -= delta;
        }
    }
}
