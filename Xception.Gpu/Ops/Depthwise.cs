using ILGPU;
using ILGPU.Runtime;
using Device = Xception.Gpu.Runtime.Device;
using Xception.Gpu.Kernels;
using Xception.Gpu.Kernels.Cpu;

namespace Xception.Gpu.Ops;

/// <summary>
/// Depthwise k x k convolution, depth multiplier 1: x [N, H, W, C] with w [KH, KW, C] -> y [N, OH, OW, C].
/// Keras stores the kernel as [KH, KW, C, 1]; the trailing 1 is dropped here (same memory order).
/// </summary>
public sealed class Depthwise
{
    const string Name = "depthwise";
    readonly Device d;
    readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ConvShape, ArrayView<float>> forward, backwardInput;
    readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ConvShape, int, ArrayView<float>> weightPartials;
    /// <summary>The CPU accelerator's SIMD variants (one band of rows per core), or null on GPU-type devices.</summary>
    readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ConvShape, int, ArrayView<float>>? cpuForward, cpuBackwardInput, cpuBackwardWeight;

    Depthwise(Device d)
    {
        this.d = d;
        if (!d.UsesGpuKernels)
        {
            cpuForward = d.Load("depthwise.cpu_simd.forward", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ConvShape, int, ArrayView<float>>(DepthwiseCpuKernels.Forward));
            cpuBackwardInput = d.Load("depthwise.cpu_simd.backward_input", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ConvShape, int, ArrayView<float>>(DepthwiseCpuKernels.BackwardInput));
            cpuBackwardWeight = d.Load("depthwise.cpu_simd.backward_weight", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ConvShape, int, ArrayView<float>>(DepthwiseCpuKernels.BackwardWeight));
            forward = backwardInput = null!;
            weightPartials = null!;
            return;
        }
        forward = d.Load("depthwise.forward", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ConvShape, ArrayView<float>>(DepthwiseKernels.Forward));
        backwardInput = d.Load("depthwise.backward_input", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ConvShape, ArrayView<float>>(DepthwiseKernels.BackwardInput));
        weightPartials = d.Load("depthwise.backward_weight", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ConvShape, int, ArrayView<float>>(DepthwiseKernels.BackwardWeightPartials));
    }

    public static Depthwise On(Device d) => d.Op(x => new Depthwise(x));

    public static ConvShape Geometry(Shape x, Shape w, int stride, Padding padding)
    {
        if (w.Rank != 3 || w[0] != w[1])
            throw new ShapeException(Name, $"weights must be [k, k, channels], got {w}");
        if (x.Rank != 4 || x[3] != w[2])
            throw new ShapeException(Name, $"input {x} must be NHWC with {w[2]} channels to match weights {w}");
        return Window.Of(Name, x, w[0], stride, padding, x[3]);
    }

    public void Forward(Tensor<float> x, Tensor<float> w, int stride, Padding padding, Tensor<float> y)
    {
        Expect.Device(Name, d, ("input", x), ("weights", w), ("output", y));
        var s = Geometry(x.Shape, w.Shape, stride, padding);
        Expect.Dims(Name, "output", y, s.OutputShape());
        if (cpuForward is not null) cpuForward(d.CpuWorkers, x.View, w.View, s, d.CpuCores, y.View);
        else forward(d.GridFor(s.OutputLength), x.View, w.View, s, y.View);
    }

    public void BackwardInput(Tensor<float> dy, Tensor<float> w, int stride, Padding padding, Tensor<float> dx)
    {
        Expect.Device(Name, d, ("output gradient", dy), ("weights", w), ("input gradient", dx));
        var s = Geometry(dx.Shape, w.Shape, stride, padding);
        Expect.Dims(Name, "output gradient", dy, s.OutputShape());
        if (cpuBackwardInput is not null) cpuBackwardInput(d.CpuWorkers, dy.View, w.View, s, d.CpuCores, dx.View);
        else backwardInput(d.GridFor(s.InputLength), dy.View, w.View, s, dx.View);
    }

    public void BackwardWeight(Tensor<float> x, Tensor<float> dy, int stride, Padding padding, Tensor<float> dw)
    {
        Expect.Device(Name, d, ("input", x), ("output gradient", dy), ("weight gradient", dw));
        var s = Geometry(x.Shape, dw.Shape, stride, padding);
        Expect.Dims(Name, "output gradient", dy, s.OutputShape());
        if (cpuBackwardWeight is not null)
        {
            var partial = d.Scratch(ScratchSlot.RowPartials, (long)d.CpuCores * dw.Length);
            cpuBackwardWeight(d.CpuWorkers, x.View, dy.View, s, d.CpuCores, partial);
            Reductions.On(d).SumRows(partial, d.CpuCores, dw.Length, 0f, dw.View);
            return;
        }
        Reductions.On(d).ChunkedSum(s.OutputPixels, dw.Length, dw.Length,
            (grid, chunk, partial) => weightPartials(grid, x.View, dy.View, s, chunk, partial), dw.View);
    }

    /// <summary>Plain-loop float64 reference.</summary>
    internal static class Reference
    {
        public static double[] Forward(double[] x, double[] w, ConvShape s)
        {
            var y = new double[s.OutputLength];
            for (int n = 0; n < s.N; n++)
                for (int oy = 0; oy < s.OH; oy++)
                    for (int ox = 0; ox < s.OW; ox++)
                        for (int c = 0; c < s.C; c++)
                        {
                            double acc = 0;
                            for (int ky = 0; ky < s.KH; ky++)
                                for (int kx = 0; kx < s.KW; kx++)
                                    if (s.Tap(oy, ox, ky, kx, out int iy, out int ix))
                                        acc += x[((n * s.H + iy) * s.W + ix) * s.C + c] * w[(ky * s.KW + kx) * s.C + c];
                            y[((n * s.OH + oy) * s.OW + ox) * s.C + c] = acc;
                        }
            return y;
        }

        public static (double[] Dx, double[] Dw) Backward(double[] x, double[] w, double[] dy, ConvShape s)
        {
            var dx = new double[x.Length];
            var dw = new double[w.Length];
            for (int n = 0; n < s.N; n++)
                for (int oy = 0; oy < s.OH; oy++)
                    for (int ox = 0; ox < s.OW; ox++)
                        for (int c = 0; c < s.C; c++)
                        {
                            double g = dy[((n * s.OH + oy) * s.OW + ox) * s.C + c];
                            for (int ky = 0; ky < s.KH; ky++)
                                for (int kx = 0; kx < s.KW; kx++)
                                    if (s.Tap(oy, ox, ky, kx, out int iy, out int ix))
                                    {
                                        int xi = ((n * s.H + iy) * s.W + ix) * s.C + c, wi = (ky * s.KW + kx) * s.C + c;
                                        dx[xi] += g * w[wi];
                                        dw[wi] += g * x[xi];
                                    }
                        }
            return (dx, dw);
        }
    }
}
