using ILGPU;
using ILGPU.Runtime;
using Device = Xception.Gpu.Runtime.Device;
using Xception.Gpu.Kernels;

namespace Xception.Gpu.Ops;

/// <summary>
/// Inverted dropout (Keras): training zeroes each value with probability rate and scales the rest by
/// 1 / (1 - rate); inference is the identity. The mask is a function of (seed, index), so backward
/// recomputes it: pass the same seed to both.
/// </summary>
public sealed class Dropout
{
    const string Name = "dropout";
    readonly Device d;
    readonly Action<KernelConfig, ArrayView<float>, float, uint, int, ArrayView<float>> forward, backward;

    Dropout(Device d)
    {
        this.d = d;
        forward = d.Load("dropout.forward", a => a.LoadStreamKernel<ArrayView<float>, float, uint, int, ArrayView<float>>(DropoutKernels.Forward));
        backward = d.Load("dropout.backward", a => a.LoadStreamKernel<ArrayView<float>, float, uint, int, ArrayView<float>>(DropoutKernels.Backward));
    }

    public static Dropout On(Device d) => d.Op(x => new Dropout(x));

    static void CheckRate(float rate)
    {
        if (!(rate >= 0f && rate < 1f)) throw new OpArgumentException(Name, $"rate must be in [0, 1), got {rate}");
    }

    public void Forward(Tensor<float> x, float rate, uint seed, Tensor<float> y)
    {
        Expect.Device(Name, d, ("input", x), ("output", y));
        CheckRate(rate);
        Expect.SameShape(Name, "output", y, "input", x);
        forward(d.GridFor(x.Length), x.View, rate, seed, x.Length, y.View);
    }

    public void Backward(Tensor<float> dy, float rate, uint seed, Tensor<float> dx)
    {
        Expect.Device(Name, d, ("output gradient", dy), ("input gradient", dx));
        CheckRate(rate);
        Expect.SameShape(Name, "input gradient", dx, "output gradient", dy);
        backward(d.GridFor(dy.Length), dy.View, rate, seed, dy.Length, dx.View);
    }

    internal static class Reference
    {
        public static double[] Mask(int n, float rate, uint seed)
        {
            var m = new double[n];
            for (int i = 0; i < n; i++) m[i] = DropoutKernels.Uniform(seed, i) >= rate ? 1.0 / (1.0 - rate) : 0.0;
            return m;
        }

        public static double[] Apply(double[] x, float rate, uint seed)
        {
            var m = Mask(x.Length, rate, seed);
            for (int i = 0; i < m.Length; i++) m[i] *= x[i];
            return m;
        }
    }
}
