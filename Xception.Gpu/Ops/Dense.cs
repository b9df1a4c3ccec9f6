using ILGPU;
using ILGPU.Runtime;
using Device = Xception.Gpu.Runtime.Device;
using Xception.Gpu.Kernels;

namespace Xception.Gpu.Ops;

/// <summary>Fully connected layer with bias: y [N, O] = x [N, C] w [C, O] + b [O] (Keras' Dense).</summary>
public sealed class Dense
{
    const string Name = "dense";
    readonly Device d;
    readonly Action<KernelConfig, ArrayView<float>, int, int, ArrayView<float>> addBias;

    Dense(Device d)
    {
        this.d = d;
        addBias = d.Load("dense.add_bias", a => a.LoadStreamKernel<ArrayView<float>, int, int, ArrayView<float>>(ElementwiseKernels.AddBias));
    }

    public static Dense On(Device d) => d.Op(x => new Dense(x));

    static void CheckShapes(Tensor<float> x, Tensor<float> w, Tensor<float>? b)
    {
        Expect.Rank(Name, "weights", w, 2);
        Expect.Dims(Name, "input", x, -1, w.Shape[0]);
        if (b is not null) Expect.Dims(Name, "bias", b, w.Shape[1]);
    }

    public void Forward(Tensor<float> x, Tensor<float> w, Tensor<float> b, Tensor<float> y)
    {
        Expect.Device(Name, d, ("input", x), ("weights", w), ("bias", b), ("output", y));
        CheckShapes(x, w, b);
        int n = x.Shape[0], c = w.Shape[0], o = w.Shape[1];
        Expect.Dims(Name, "output", y, n, o);
        Gemm.On(d).Run(x.View, false, w.View, false, n, o, c, 0f, y.View);
        addBias(d.GridFor(y.Length), b.View, n, o, y.View);
    }

    /// <summary>dx = dy w^T, dw = x^T dy, db = column sums of dy.</summary>
    /// <summary>Only the input gradient dx = dy w^T (a frozen layer's backward: its weights take no gradient).</summary>
    public void BackwardInput(Tensor<float> dy, Tensor<float> w, Tensor<float> dx)
    {
        Expect.Device(Name, d, ("output gradient", dy), ("weights", w), ("input gradient", dx));
        int n = dx.Shape[0], c = w.Shape[0], o = w.Shape[1];
        Expect.Dims(Name, "output gradient", dy, n, o);
        Expect.Dims(Name, "input gradient", dx, n, c);
        Gemm.On(d).Run(dy.View, false, w.View, true, n, c, o, 0f, dx.View);
    }

    public void Backward(Tensor<float> dy, Tensor<float> x, Tensor<float> w, Tensor<float> dx, Tensor<float> dw, Tensor<float> db)
    {
        Expect.Device(Name, d, ("output gradient", dy), ("input", x), ("weights", w), ("input gradient", dx), ("weight gradient", dw), ("bias gradient", db));
        CheckShapes(x, w, db);
        int n = x.Shape[0], c = w.Shape[0], o = w.Shape[1];
        Expect.Dims(Name, "output gradient", dy, n, o);
        Expect.SameShape(Name, "input gradient", dx, "input", x);
        Expect.SameShape(Name, "weight gradient", dw, "weights", w);
        var mm = Gemm.On(d);
        mm.Run(dy.View, false, w.View, true, n, c, o, 0f, dx.View);
        mm.Run(x.View, true, dy.View, false, c, o, n, 0f, dw.View);
        Reductions.On(d).SumColumns(dy.View, n, o, 0f, db.View);
    }

    internal static class Reference
    {
        public static double[] Forward(double[] x, double[] w, double[] b, int n, int c, int o)
        {
            var y = Gemm.Reference(x, false, w, false, n, o, c);
            for (int i = 0; i < y.Length; i++) y[i] += b[i % o];
            return y;
        }

        public static (double[] Dx, double[] Dw, double[] Db) Backward(double[] x, double[] w, double[] dy, int n, int c, int o)
        {
            var db = new double[o];
            for (int i = 0; i < dy.Length; i++) db[i % o] += dy[i];
            return (Gemm.Reference(dy, false, w, true, n, c, o), Gemm.Reference(x, true, dy, false, c, o, n), db);
        }
    }
}
