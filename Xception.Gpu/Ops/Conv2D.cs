using ILGPU;
using ILGPU.Runtime;
using Device = Xception.Gpu.Runtime.Device;
using Xception.Gpu.Kernels;
using Xception.Gpu.Kernels.Cpu;

namespace Xception.Gpu.Ops;

/// <summary>
/// Regular k x k convolution without bias: x [N, H, W, C] * w [KH, KW, C / G, O] -> y [N, OH, OW, O], stride s,
/// TensorFlow 'same' or 'valid' padding, G groups (Keras' Conv2D(groups=G); the group count follows from
/// the weights' third dimension). Forward, input gradient, weight gradient, float64 reference.
/// The CPU accelerator runs it as im2col + <see cref="Gemm"/>, a batch of one GEMM per group (which rounds the
/// operands at <see cref="Precision.Tf32"/> or <see cref="Precision.Bf16"/>). On GPUs at those precisions an ungrouped
/// convolution runs as implicit GEMM on the tensor cores where the device has them
/// (<see cref="ConvTensorCoreKernels"/>); elsewhere, and for grouped convolutions, the operands are rounded to the
/// format and the fp32 kernels multiply them, so every device computes with the same operands.
/// </summary>
public sealed class Conv2D
{
    const string Name = "conv2d";
    readonly Device d;
    readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ConvShape, ArrayView<float>> forward, backwardInput;
    readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ConvShape, int, ArrayView<float>> weightPartials;

    /// <summary>The implicit-GEMM tensor-core passes; null where the device has no tensor cores.</summary>
    readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ConvShape, int, ArrayView<float>>? tensorForward, tensorBackwardInput;
    readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ConvShape, int, int, ArrayView<float>>? tensorBackwardWeight;

    /// <summary>The CPU accelerator's im2col and col2im (the GEMM does the arithmetic); null on GPU-type devices.</summary>
    readonly Action<KernelConfig, ArrayView<float>, ConvShape, int, int, int, ArrayView<float>>? im2col, col2im;

    /// <summary>
    /// Floats of im2col columns per chunk on the CPU: 16 MB by default, big enough for whole GEMM tiles and small
    /// beside the activations. Tests lower it to make many chunks out of small shapes.
    /// </summary>
    internal long ColumnChunkFloats { get; set; } = 1L << 20;

    Conv2D(Device d)
    {
        this.d = d;
        if (!d.UsesGpuKernels)
        {
            im2col = d.Load("conv2d.cpu_simd.im2col", a => a.LoadStreamKernel<ArrayView<float>, ConvShape, int, int, int, ArrayView<float>>(ConvCpuKernels.Im2Col));
            col2im = d.Load("conv2d.cpu_simd.col2im_add", a => a.LoadStreamKernel<ArrayView<float>, ConvShape, int, int, int, ArrayView<float>>(ConvCpuKernels.Col2ImAdd));
        }
        forward = d.Load("conv2d.forward", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ConvShape, ArrayView<float>>(Conv2DKernels.Forward));
        backwardInput = d.Load("conv2d.backward_input", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ConvShape, ArrayView<float>>(Conv2DKernels.BackwardInput));
        weightPartials = d.Load("conv2d.backward_weight", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ConvShape, int, ArrayView<float>>(Conv2DKernels.BackwardWeightPartials));
        if (d.UsesGpuKernels && d.HasTensorCores)
        {
            tensorForward = d.Load("conv2d.tensor_cores.forward", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ConvShape, int, ArrayView<float>>(ConvTensorCoreKernels.Forward));
            tensorBackwardInput = d.Load("conv2d.tensor_cores.backward_input", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ConvShape, int, ArrayView<float>>(ConvTensorCoreKernels.BackwardInput));
            tensorBackwardWeight = d.Load("conv2d.tensor_cores.backward_weight", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ConvShape, int, int, ArrayView<float>>(ConvTensorCoreKernels.BackwardWeight));
        }
    }

    public static Conv2D On(Device d) => d.Op(x => new Conv2D(x));

    /// <summary>Geometry for input x and weights w [KH, KW, C / G, O]; checks that they fit.</summary>
    public static ConvShape Geometry(Shape x, Shape w, int stride, Padding padding)
    {
        if (w.Rank != 4 || w[0] != w[1])
            throw new ShapeException(Name, $"weights must be [k, k, in / groups, out], got {w}");
        if (x.Rank != 4 || x[3] % w[2] != 0 || w[3] % (x[3] / w[2]) != 0)
            throw new ShapeException(Name, $"input {x} must be NHWC with a multiple of {w[2]} channels (groups) that also divides the {w[3]} outputs of weights {w}");
        var s = Window.Of(Name, x, w[0], stride, padding, w[3]);
        s.Groups = x[3] / w[2];
        return s;
    }

    public void Forward(Tensor<float> x, Tensor<float> w, int stride, Padding padding, Tensor<float> y)
    {
        Expect.Device(Name, d, ("input", x), ("weights", w), ("output", y));
        var s = Geometry(x.Shape, w.Shape, stride, padding);
        Expect.Dims(Name, "output", y, s.OutputShape());
        if (UsesGemm)
        {
            // y_g = col_g w_g: group g's columns [pixels, kg] by its weights (rows kg, columns g * Og onwards of w)
            // into its output channels (columns g * Og onwards of y).
            int kg = s.KH * s.KW * s.GroupInputs, og = s.GroupOutputs;
            foreach (var (row0, rows, col) in Chunks(s, x.View))
            {
                int m = rows * s.OW;
                Gemm.On(d).RunBatches(col, kg, 1, (long)m * kg, w.View, s.O, 1, og, m, og, kg, 0f,
                    y.View.SubView((long)row0 * s.OW * s.O, (long)m * s.O), s.O, og, s.Groups);
            }
            return;
        }
        var (xv, wv) = (x.View, w.View);
        if (d.Precision != Precision.Fp32)
        {
            int format = Gemm.Format(d.Precision);
            if (OnTensorCores(s))
            {
                tensorForward!(TensorGrid(s.OutputPixels, s.O, 1), xv, wv, s, format, y.View);
                return;
            }
            (xv, wv) = (Rounded(xv, ScratchSlot.RoundedA, format), Rounded(wv, ScratchSlot.RoundedB, format));
        }
        forward(d.GridFor((long)s.OutputPixels * s.Groups * ((s.GroupOutputs + 3) / 4)), xv, wv, s, y.View);
    }

    public void BackwardInput(Tensor<float> dy, Tensor<float> w, int stride, Padding padding, Tensor<float> dx)
    {
        Expect.Device(Name, d, ("output gradient", dy), ("weights", w), ("input gradient", dx));
        var s = Geometry(dx.Shape, w.Shape, stride, padding);
        Expect.Dims(Name, "output gradient", dy, s.OutputShape());
        if (UsesGemm)
        {
            // dcol_g = dY_g W_g^T, chunk by chunk, added back onto the pixels each column came from.
            dx.View.MemSetToZero();
            int kg = s.KH * s.KW * s.GroupInputs, og = s.GroupOutputs, chunkRows = ChunkRows(s);
            for (int row0 = 0; row0 < s.N * s.OH; row0 += chunkRows)
            {
                int rows = Math.Min(chunkRows, s.N * s.OH - row0), m = rows * s.OW;
                var dcol = d.Scratch(ScratchSlot.Columns, (long)m * kg * s.Groups);
                Gemm.On(d).RunBatches(dy.View.SubView((long)row0 * s.OW * s.O, (long)m * s.O), s.O, 1, og, w.View, 1, s.O, og,
                    m, kg, og, 0f, dcol, kg, (long)m * kg, s.Groups);
                col2im!(d.CpuWorkers, dcol, s, row0, rows, d.CpuCores, dx.View);
            }
            return;
        }
        var (dyv, wv) = (dy.View, w.View);
        if (d.Precision != Precision.Fp32)
        {
            int format = Gemm.Format(d.Precision);
            if (OnTensorCores(s))
            {
                tensorBackwardInput!(TensorGrid(s.N * s.H * s.W, s.C, 1), dyv, wv, s, format, dx.View);
                return;
            }
            (dyv, wv) = (Rounded(dyv, ScratchSlot.RoundedA, format), Rounded(wv, ScratchSlot.RoundedB, format));
        }
        backwardInput(d.GridFor(s.InputLength), dyv, wv, s, dx.View);
    }

    public void BackwardWeight(Tensor<float> x, Tensor<float> dy, int stride, Padding padding, Tensor<float> dw)
    {
        Expect.Device(Name, d, ("input", x), ("output gradient", dy), ("weight gradient", dw));
        var s = Geometry(x.Shape, dw.Shape, stride, padding);
        Expect.Dims(Name, "output gradient", dy, s.OutputShape());
        if (UsesGemm)
        {
            // dW_g = col_g^T dY_g, summed over the chunks.
            int kg = s.KH * s.KW * s.GroupInputs, og = s.GroupOutputs;
            bool first = true;
            foreach (var (row0, rows, col) in Chunks(s, x.View))
            {
                int m = rows * s.OW;
                Gemm.On(d).RunBatches(col, 1, kg, (long)m * kg, dy.View.SubView((long)row0 * s.OW * s.O, (long)m * s.O), s.O, 1, og,
                    kg, og, m, first ? 0f : 1f, dw.View, s.O, og, s.Groups);
                first = false;
            }
            return;
        }
        var (xv, dyv) = (x.View, dy.View);
        if (d.Precision != Precision.Fp32)
        {
            int format = Gemm.Format(d.Precision);
            if (OnTensorCores(s))
            {
                // A long reduction (every output pixel) onto a small dw: K is split as a GEMM's would be.
                int m = s.KH * s.KW * s.C;
                long tiles = (long)((m + GemmTensorCoreKernels.TileM - 1) / GemmTensorCoreKernels.TileM) * ((s.O + GemmTensorCoreKernels.TileN - 1) / GemmTensorCoreKernels.TileN);
                var (slices, kChunk) = Gemm.On(d).SplitK(tiles, m, s.O, s.OutputPixels);
                var target = slices == 1 ? dw.View : d.Scratch(ScratchSlot.GemmPartials, (long)slices * m * s.O);
                tensorBackwardWeight!(TensorGrid(m, s.O, slices), xv, dyv, s, kChunk, format, target);
                if (slices > 1) Reductions.On(d).SumRows(target, slices, m * s.O, 0f, dw.View);
                return;
            }
            (xv, dyv) = (Rounded(xv, ScratchSlot.RoundedA, format), Rounded(dyv, ScratchSlot.RoundedB, format));
        }
        int threadsPerChunk = s.KH * s.KW * s.GroupInputs * s.Groups * ((s.GroupOutputs + 3) / 4);
        Reductions.On(d).ChunkedSum(s.OutputPixels, threadsPerChunk, dw.Length,
            (grid, chunk, partial) => weightPartials(grid, xv, dyv, s, chunk, partial), dw.View);
    }

    /// <summary>Whether a convolution of this shape runs on the tensor cores at a precision other than fp32.</summary>
    internal bool OnTensorCores(ConvShape s) => tensorForward is not null && s.Groups == 1;

    /// <summary>One group of the tensor-core tile per 64 x 64 tile of the [m, n] product and K slice.</summary>
    static KernelConfig TensorGrid(int m, int n, int slices)
    {
        long units = (long)((m + GemmTensorCoreKernels.TileM - 1) / GemmTensorCoreKernels.TileM) * ((n + GemmTensorCoreKernels.TileN - 1) / GemmTensorCoreKernels.TileN) * slices;
        return new KernelConfig((int)Math.Min(units, int.MaxValue), GemmTensorCoreKernels.GroupSize);
    }

    /// <summary>A whole tensor rounded to the format in scratch (the devices that multiply rounded operands in fp32).</summary>
    ArrayView<float> Rounded(ArrayView<float> v, int slot, int format) => Gemm.On(d).Rounded(v, v.Length, slot, format);

    /// <summary>The CPU accelerator runs convolutions as im2col + GEMM (grouped ones as a batch of GEMMs).</summary>
    bool UsesGemm => im2col is not null;

    int ChunkRows(ConvShape s) => (int)Math.Clamp(ColumnChunkFloats / ((long)s.OW * s.KH * s.KW * s.C), 1, s.N * s.OH);

    /// <summary>The output rows in chunks, each with its group-major im2col columns (valid until the next chunk).</summary>
    IEnumerable<(int Row0, int Rows, ArrayView<float> Columns)> Chunks(ConvShape s, ArrayView<float> x)
    {
        int k = s.KH * s.KW * s.C, chunkRows = ChunkRows(s);
        for (int row0 = 0; row0 < s.N * s.OH; row0 += chunkRows)
        {
            int rows = Math.Min(chunkRows, s.N * s.OH - row0);
            var col = d.Scratch(ScratchSlot.Columns, (long)rows * s.OW * k);
            im2col!(d.CpuWorkers, x, s, row0, rows, d.CpuCores, col);
            yield return (row0, rows, col);
        }
    }

    internal static class Reference
    {
        public static double[] Forward(double[] x, double[] w, ConvShape s)
        {
            var y = new double[s.OutputLength];
            for (int n = 0; n < s.N; n++)
                for (int oy = 0; oy < s.OH; oy++)
                    for (int ox = 0; ox < s.OW; ox++)
                        for (int o = 0; o < s.O; o++)
                        {
                            double acc = 0;
                            for (int ky = 0; ky < s.KH; ky++)
                                for (int kx = 0; kx < s.KW; kx++)
                                    if (s.Tap(oy, ox, ky, kx, out int iy, out int ix))
                                        for (int c = 0; c < s.GroupInputs; c++)
                                            acc += x[((n * s.H + iy) * s.W + ix) * s.C + o / s.GroupOutputs * s.GroupInputs + c] * w[((ky * s.KW + kx) * s.GroupInputs + c) * s.O + o];
                            y[((n * s.OH + oy) * s.OW + ox) * s.O + o] = acc;
                        }
            return y;
        }

        /// <summary>Both gradients of sum(dy * y): (dx, dw).</summary>
        public static (double[] Dx, double[] Dw) Backward(double[] x, double[] w, double[] dy, ConvShape s)
        {
            var dx = new double[x.Length];
            var dw = new double[w.Length];
            for (int n = 0; n < s.N; n++)
                for (int oy = 0; oy < s.OH; oy++)
                    for (int ox = 0; ox < s.OW; ox++)
                        for (int o = 0; o < s.O; o++)
                        {
                            double g = dy[((n * s.OH + oy) * s.OW + ox) * s.O + o];
                            for (int ky = 0; ky < s.KH; ky++)
                                for (int kx = 0; kx < s.KW; kx++)
                                    if (s.Tap(oy, ox, ky, kx, out int iy, out int ix))
                                        for (int c = 0; c < s.GroupInputs; c++)
                                        {
                                            int xi = ((n * s.H + iy) * s.W + ix) * s.C + o / s.GroupOutputs * s.GroupInputs + c;
                                            int wi = ((ky * s.KW + kx) * s.GroupInputs + c) * s.O + o;
                                            dx[xi] += g * w[wi];
                                            dw[wi] += g * x[xi];
                                        }
                        }
            return (dx, dw);
        }
    }
}
