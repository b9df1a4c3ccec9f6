using ILGPU;
using ILGPU.Runtime;
using Device = Xception.Gpu.Runtime.Device;
using Xception.Gpu.Kernels;

namespace Xception.Gpu.Ops;

/// <summary>
/// Max pooling, k x k stride s with 'same' or 'valid' padding (Xception: 3x3 stride 2 'same'). The forward
/// pass records each window's argmax for the backward pass.
/// </summary>
public sealed class MaxPool
{
    const string Name = "maxpool";
    readonly Device d;
    readonly Action<KernelConfig, ArrayView<float>, ConvShape, int, ArrayView<float>, ArrayView<int>> forward;
    readonly Action<KernelConfig, ArrayView<float>, ArrayView<int>, ConvShape, ArrayView<float>> backward;
    readonly ArrayView<int> noArgmax;
    /// <summary>The CPU accelerator's variants (bands of rows per core; inference's forward vectorized), or null.</summary>
    readonly Action<KernelConfig, ArrayView<float>, ConvShape, int, int, ArrayView<float>, ArrayView<int>>? cpuForward;
    readonly Action<KernelConfig, ArrayView<float>, ArrayView<int>, ConvShape, int, ArrayView<float>>? cpuBackward;

    MaxPool(Device d)
    {
        this.d = d;
        noArgmax = d.Accelerator.Allocate1D<int>(1).View; // freed with the accelerator
        if (!d.UsesGpuKernels)
        {
            cpuForward = d.Load("maxpool.cpu_simd.forward", a => a.LoadStreamKernel<ArrayView<float>, ConvShape, int, int, ArrayView<float>, ArrayView<int>>(Kernels.Cpu.ElementwiseCpuKernels.MaxPool));
            cpuBackward = d.Load("maxpool.cpu_simd.backward", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ConvShape, int, ArrayView<float>>(Kernels.Cpu.ElementwiseCpuKernels.MaxPoolBackward));
        }
        forward = d.UsesGpuKernels ? d.Load("maxpool.forward", a => a.LoadStreamKernel<ArrayView<float>, ConvShape, int, ArrayView<float>, ArrayView<int>>(MaxPoolKernels.Forward)) : null!;
        backward = d.UsesGpuKernels ? d.Load("maxpool.backward", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ConvShape, ArrayView<float>>(MaxPoolKernels.Backward)) : null!;
    }

    public static MaxPool On(Device d) => d.Op(x => new MaxPool(x));

    public static ConvShape Geometry(Shape x, int kernel, int stride, Padding padding) =>
        Window.Of(Name, x, kernel, stride, padding, x.Rank == 4 ? x[3] : 0);

    /// <summary>One window over the whole H x W image (global max pooling): output [N, 1, 1, C].</summary>
    public static ConvShape GlobalGeometry(Shape x)
    {
        if (x.Rank != 4) throw new ShapeException(Name, $"input must be NHWC (rank 4), got shape {x}");
        return new ConvShape { N = x[0], H = x[1], W = x[2], C = x[3], O = x[3], OH = 1, OW = 1, KH = x[1], KW = x[2], Stride = 1, Groups = 1 };
    }

    /// <summary>y = window maxima; <paramref name="argmax"/> (same shape as y) is filled when given.</summary>
    public void Forward(Tensor<float> x, int kernel, int stride, Padding padding, Tensor<float> y, Tensor<int>? argmax) =>
        Forward(x, Geometry(x.Shape, kernel, stride, padding), y, argmax);

    public void Forward(Tensor<float> x, ConvShape s, Tensor<float> y, Tensor<int>? argmax)
    {
        Expect.Device(Name, d, ("input", x), ("output", y));
        if (argmax is not null) Expect.Device(Name, d, "argmax", argmax);
        Expect.Dims(Name, "input", x, s.InputShape());
        Expect.Dims(Name, "output", y, s.OutputShape());
        if (argmax is not null) Expect.Dims(Name, "argmax", argmax, s.OutputShape());
        var am = argmax?.View ?? noArgmax;
        if (cpuForward is not null) cpuForward(d.CpuWorkers, x.View, s, argmax is null ? 0 : 1, d.CpuCores, y.View, am);
        else forward(d.GridFor(s.OutputLength), x.View, s, argmax is null ? 0 : 1, y.View, am);
    }

    public void Backward(Tensor<float> dy, Tensor<int> argmax, int kernel, int stride, Padding padding, Tensor<float> dx) =>
        Backward(dy, argmax, Geometry(dx.Shape, kernel, stride, padding), dx);

    public void Backward(Tensor<float> dy, Tensor<int> argmax, ConvShape s, Tensor<float> dx)
    {
        Expect.Device(Name, d, ("output gradient", dy), ("input gradient", dx));
        Expect.Device(Name, d, "argmax", argmax);
        Expect.Dims(Name, "input gradient", dx, s.InputShape());
        Expect.Dims(Name, "output gradient", dy, s.OutputShape());
        Expect.Dims(Name, "argmax", argmax, s.OutputShape());
        if (cpuBackward is not null) cpuBackward(d.CpuWorkers, dy.View, argmax.View, s, d.CpuCores, dx.View);
        else backward(d.GridFor(s.InputLength), dy.View, argmax.View, s, dx.View);
    }

    /// <summary>Float64 reference; the first maximum in row-major window order wins ties.</summary>
    internal static class Reference
    {
        public static (double[] Y, int[] Argmax) Forward(double[] x, ConvShape s)
        {
            var y = new double[s.OutputLength];
            var am = new int[s.OutputLength];
            for (int n = 0; n < s.N; n++)
                for (int oy = 0; oy < s.OH; oy++)
                    for (int ox = 0; ox < s.OW; ox++)
                        for (int c = 0; c < s.C; c++)
                        {
                            double best = double.NegativeInfinity; int at = -1;
                            for (int ky = 0; ky < s.KH; ky++)
                                for (int kx = 0; kx < s.KW; kx++)
                                    if (s.Tap(oy, ox, ky, kx, out int iy, out int ix))
                                    {
                                        int i = ((n * s.H + iy) * s.W + ix) * s.C + c;
                                        if (at < 0 || x[i] > best) { best = x[i]; at = i; }
                                    }
                            int o = ((n * s.OH + oy) * s.OW + ox) * s.C + c;
                            y[o] = best; am[o] = at;
                        }
            return (y, am);
        }

        public static double[] Backward(double[] x, double[] dy, ConvShape s)
        {
            var (_, am) = Forward(x, s);
            var dx = new double[x.Length];
            for (int o = 0; o < dy.Length; o++) dx[am[o]] += dy[o];
            return dx;
        }
    }
}

/// <summary>Global average pooling: x [N, H, W, C] -> y [N, C].</summary>
public sealed class GlobalAvgPool
{
    const string Name = "global_avg_pool";
    readonly Device d;
    readonly Action<KernelConfig, ArrayView<float>, int, int, int, ArrayView<float>> forward, backward;

    GlobalAvgPool(Device d)
    {
        this.d = d;
        forward = d.Load("global_avg_pool.forward", a => a.LoadStreamKernel<ArrayView<float>, int, int, int, ArrayView<float>>(GlobalAvgPoolKernels.Forward));
        backward = d.Load("global_avg_pool.backward", a => a.LoadStreamKernel<ArrayView<float>, int, int, int, ArrayView<float>>(GlobalAvgPoolKernels.Backward));
    }

    public static GlobalAvgPool On(Device d) => d.Op(x => new GlobalAvgPool(x));

    public void Forward(Tensor<float> x, Tensor<float> y)
    {
        Expect.Device(Name, d, ("input", x), ("output", y));
        Expect.Rank(Name, "input", x, 4);
        Expect.Dims(Name, "output", y, x.Shape[0], x.Shape[3]);
        forward(d.GridFor(y.Length), x.View, x.Shape[0], x.Shape[1] * x.Shape[2], x.Shape[3], y.View);
    }

    public void Backward(Tensor<float> dy, Tensor<float> dx)
    {
        Expect.Device(Name, d, ("output gradient", dy), ("input gradient", dx));
        Expect.Rank(Name, "input gradient", dx, 4);
        Expect.Dims(Name, "output gradient", dy, dx.Shape[0], dx.Shape[3]);
        backward(d.GridFor(dx.Length), dy.View, dx.Shape[0], dx.Shape[1] * dx.Shape[2], dx.Shape[3], dx.View);
    }

    internal static class Reference
    {
        public static double[] Forward(double[] x, int n, int pixels, int c)
        {
            var y = new double[n * c];
            for (int b = 0; b < n; b++)
                for (int p = 0; p < pixels; p++)
                    for (int ch = 0; ch < c; ch++) y[b * c + ch] += x[(b * pixels + p) * c + ch] / pixels;
            return y;
        }

        public static double[] Backward(double[] dy, int n, int pixels, int c)
        {
            var dx = new double[n * pixels * c];
            for (int i = 0; i < dx.Length; i++) dx[i] = dy[i / (pixels * c) * c + i % c] / pixels;
            return dx;
        }
    }
}
