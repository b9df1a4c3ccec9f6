using ILGPU;
using ILGPU.Runtime;
using Device = Xception.Gpu.Runtime.Device;
using Xception.Gpu.Kernels;

namespace Xception.Gpu.Ops;

/// <summary>Activation functions Xception uses: ReLU, and ELU for the paper's section 4.7 ablation.</summary>
public enum ActivationKind { None, Relu, Elu }

/// <summary>ReLU and ELU (alpha 1, as Keras), forward and backward; backward reads the forward output.</summary>
public sealed class Activation
{
    const string Name = "activation";
    public const float EluAlpha = 1f;
    readonly Device d;
    readonly Action<KernelConfig, ArrayView<float>, int, ArrayView<float>> reluForward;
    readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, ArrayView<float>> reluBackward;
    readonly Action<KernelConfig, ArrayView<float>, float, int, ArrayView<float>> eluForward;
    readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, float, int, ArrayView<float>> eluBackward;

    Activation(Device d)
    {
        this.d = d;
        reluForward = d.UsesGpuKernels ? d.Load("relu.forward", a => a.LoadStreamKernel<ArrayView<float>, int, ArrayView<float>>(ActivationKernels.ReluForward)) : null!;
        reluBackward = d.UsesGpuKernels ? d.Load("relu.backward", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, ArrayView<float>>(ActivationKernels.ReluBackward)) : null!;
        eluForward = d.Load("elu.forward", a => a.LoadStreamKernel<ArrayView<float>, float, int, ArrayView<float>>(ActivationKernels.EluForward));
        eluBackward = d.Load("elu.backward", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, float, int, ArrayView<float>>(ActivationKernels.EluBackward));
    }

    public static Activation On(Device d) => d.Op(x => new Activation(x));

    /// <summary>y = f(x); x and y may be the same tensor.</summary>
    public void Forward(ActivationKind kind, Tensor<float> x, Tensor<float> y)
    {
        Expect.Device(Name, d, ("input", x), ("output", y));
        Expect.SameShape(Name, "output", y, "input", x);
        var grid = d.GridFor(x.Length);
        switch (kind)
        {
            case ActivationKind.Relu when CpuMap.On(d) is { } cpu: cpu.Run(Kernels.Cpu.MapOp.Relu, x.View, x.View, x.Length, y.View); break;
            case ActivationKind.Relu: reluForward(grid, x.View, x.Length, y.View); break;
            case ActivationKind.Elu: eluForward(grid, x.View, EluAlpha, x.Length, y.View); break;
            default: throw new OpArgumentException(Name, $"no kernel for activation '{kind}'");
        }
    }

    /// <summary>dx = f'(x) dy, computed from the forward output y; dx may be dy.</summary>
    public void Backward(ActivationKind kind, Tensor<float> dy, Tensor<float> y, Tensor<float> dx)
    {
        Expect.Device(Name, d, ("output gradient", dy), ("output", y), ("input gradient", dx));
        Expect.SameShape(Name, "output gradient", dy, "output", y);
        Expect.SameShape(Name, "input gradient", dx, "output", y);
        var grid = d.GridFor(y.Length);
        switch (kind)
        {
            case ActivationKind.Relu when CpuMap.On(d) is { } cpu: cpu.Run(Kernels.Cpu.MapOp.ReluBackward, y.View, dy.View, y.Length, dx.View); break;
            case ActivationKind.Relu: reluBackward(grid, dy.View, y.View, y.Length, dx.View); break;
            case ActivationKind.Elu: eluBackward(grid, dy.View, y.View, EluAlpha, y.Length, dx.View); break;
            default: throw new OpArgumentException(Name, $"no kernel for activation '{kind}'");
        }
    }

    internal static class Reference
    {
        public static double[] Forward(ActivationKind kind, double[] x) => kind switch
        {
            ActivationKind.Relu => Array.ConvertAll(x, v => Math.Max(v, 0)),
            ActivationKind.Elu => Array.ConvertAll(x, v => v > 0 ? v : EluAlpha * (Math.Exp(v) - 1)),
            _ => throw new ArgumentException(kind.ToString()),
        };

        public static double[] Backward(ActivationKind kind, double[] x, double[] dy)
        {
            var dx = new double[x.Length];
            for (int i = 0; i < x.Length; i++)
                dx[i] = x[i] > 0 ? dy[i] : kind == ActivationKind.Relu ? 0 : dy[i] * EluAlpha * Math.Exp(x[i]);
            return dx;
        }
    }
}
