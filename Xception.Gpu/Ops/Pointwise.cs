using ILGPU;
using ILGPU.Runtime;
using Device = Xception.Gpu.Runtime.Device;
using Xception.Gpu.Kernels;
using Xception.Gpu.Kernels.Cpu;

namespace Xception.Gpu.Ops;

/// <summary>
/// 1x1 convolution without bias, stride 1 (the pointwise half of SeparableConv2D) or 2 (the shortcuts):
/// x [N, H, W, C] * w [C, O] -> y [N, OH, OW, O]. Keras stores w as [1, 1, C, O] (same memory order).
/// Seen as matrices it is a GEMM: Y[M, O] = X[M, C] W[C, O] with M = N * OH * OW; a stride above 1 first
/// gathers the sampled pixels.
/// </summary>
public sealed class Pointwise
{
    const string Name = "pointwise";
    readonly Device d;
    readonly Action<KernelConfig, ArrayView<float>, ConvShape, ArrayView<float>> gather, scatter;

    Pointwise(Device d)
    {
        this.d = d;
        gather = d.UsesGpuKernels ? d.Load("pointwise.gather", a => a.LoadStreamKernel<ArrayView<float>, ConvShape, ArrayView<float>>(PointwiseKernels.Gather)) : null!;
        scatter = d.UsesGpuKernels ? d.Load("pointwise.scatter", a => a.LoadStreamKernel<ArrayView<float>, ConvShape, ArrayView<float>>(PointwiseKernels.Scatter)) : null!;
        if (!d.UsesGpuKernels)
        {
            cpuGather = d.Load("pointwise.cpu_simd.gather", a => a.LoadStreamKernel<ArrayView<float>, ConvShape, int, ArrayView<float>>(ConvCpuKernels.Gather));
            cpuScatter = d.Load("pointwise.cpu_simd.scatter", a => a.LoadStreamKernel<ArrayView<float>, ConvShape, int, ArrayView<float>>(ConvCpuKernels.Scatter));
        }
    }

    /// <summary>The CPU accelerator's row copies for the strided case, or null.</summary>
    readonly Action<KernelConfig, ArrayView<float>, ConvShape, int, ArrayView<float>>? cpuGather, cpuScatter;

    public static Pointwise On(Device d) => d.Op(x => new Pointwise(x));

    public static ConvShape Geometry(Shape x, Shape w, int stride)
    {
        if (w.Rank != 2) throw new ShapeException(Name, $"weights must be [in, out], got {w}");
        if (x.Rank != 4 || x[3] != w[0])
            throw new ShapeException(Name, $"input {x} must be NHWC with {w[0]} channels to match weights {w}");
        return Window.Of(Name, x, 1, stride, Padding.Same, w[1]);
    }

    public void Forward(Tensor<float> x, Tensor<float> w, int stride, Tensor<float> y)
    {
        Expect.Device(Name, d, ("input", x), ("weights", w), ("output", y));
        var s = Geometry(x.Shape, w.Shape, stride);
        Expect.Dims(Name, "output", y, s.OutputShape());
        Gemm.On(d).Run(Sampled(x, s), false, w.View, false, s.OutputPixels, s.O, s.C, 0f, y.View);
    }

    /// <summary>The input pixels the 1x1 window reads: x itself at stride 1, else gathered into scratch.</summary>
    ArrayView<float> Sampled(Tensor<float> x, ConvShape s)
    {
        if (s.Stride == 1) return x.View;
        var sampled = d.Scratch(ScratchSlot.Strided, (long)s.OutputPixels * s.C);
        if (cpuGather is not null) cpuGather(d.CpuWorkers, x.View, s, d.CpuCores, sampled);
        else gather(d.GridFor(sampled.Length), x.View, s, sampled);
        return sampled;
    }

    /// <summary>dX = dY W^T (then scattered back to the full grid when strided).</summary>
    public void BackwardInput(Tensor<float> dy, Tensor<float> w, int stride, Tensor<float> dx)
    {
        Expect.Device(Name, d, ("output gradient", dy), ("weights", w), ("input gradient", dx));
        var s = Geometry(dx.Shape, w.Shape, stride);
        Expect.Dims(Name, "output gradient", dy, s.OutputShape());
        var target = stride > 1 ? d.Scratch(ScratchSlot.Strided, (long)s.OutputPixels * s.C) : dx.View;
        Gemm.On(d).Run(dy.View, false, w.View, true, s.OutputPixels, s.C, s.O, 0f, target);
        if (stride > 1 && cpuScatter is not null) cpuScatter(d.CpuWorkers, target, s, d.CpuCores, dx.View);
        else if (stride > 1) scatter(d.GridFor(s.InputLength), target, s, dx.View);
    }

    /// <summary>dW = X^T dY over the sampled pixels.</summary>
    public void BackwardWeight(Tensor<float> x, Tensor<float> dy, int stride, Tensor<float> dw)
    {
        Expect.Device(Name, d, ("input", x), ("output gradient", dy), ("weight gradient", dw));
        var s = Geometry(x.Shape, dw.Shape, stride);
        Expect.Dims(Name, "output gradient", dy, s.OutputShape());
        Gemm.On(d).Run(Sampled(x, s), true, dy.View, false, s.C, s.O, s.OutputPixels, 0f, dw.View);
    }

    /// <summary>Float64 reference: a 1x1 convolution is a k = 1 regular convolution.</summary>
    internal static class Reference
    {
        public static double[] Forward(double[] x, double[] w, ConvShape s) => Conv2D.Reference.Forward(x, w, s);

        public static (double[] Dx, double[] Dw) Backward(double[] x, double[] w, double[] dy, ConvShape s) =>
            Conv2D.Reference.Backward(x, w, dy, s);
    }
}
