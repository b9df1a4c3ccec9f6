using ILGPU;
using ILGPU.Runtime;
using Device = Xception.Gpu.Runtime.Device;
using Xception.Gpu.Kernels;

namespace Xception.Gpu.Ops;

/// <summary>
/// The residual add y = a + b. Its backward is the identity for both inputs: the gradient dy flows to
/// both branches unchanged, and where one tensor feeds two layers their gradients are summed with
/// <see cref="Accumulate"/>.
/// </summary>
public sealed class Residual
{
    const string Name = "add";
    readonly Device d;
    readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, ArrayView<float>> add;
    readonly Action<KernelConfig, ArrayView<float>, int, ArrayView<float>> accumulate;

    Residual(Device d)
    {
        this.d = d;
        add = d.UsesGpuKernels ? d.Load("add.forward", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, ArrayView<float>>(ElementwiseKernels.Add)) : null!;
        accumulate = d.UsesGpuKernels ? d.Load("add.accumulate", a => a.LoadStreamKernel<ArrayView<float>, int, ArrayView<float>>(ElementwiseKernels.Accumulate)) : null!;
    }

    public static Residual On(Device d) => d.Op(x => new Residual(x));

    public void Forward(Tensor<float> a, Tensor<float> b, Tensor<float> y)
    {
        Expect.Device(Name, d, ("first input", a), ("second input", b), ("output", y));
        Expect.SameShape(Name, "second input", b, "first input", a);
        Expect.SameShape(Name, "output", y, "first input", a);
        if (CpuMap.On(d) is { } cpu) cpu.Run(Kernels.Cpu.MapOp.Add, a.View, b.View, a.Length, y.View);
        else add(d.GridFor(a.Length), a.View, b.View, a.Length, y.View);
    }

    /// <summary>acc += g.</summary>
    public void Accumulate(Tensor<float> g, Tensor<float> acc)
    {
        Expect.Device(Name, d, ("gradient", g), ("accumulator", acc));
        Expect.SameShape(Name, "gradient", g, "accumulator", acc);
        if (CpuMap.On(d) is { } cpu) cpu.Run(Kernels.Cpu.MapOp.Add, acc.View, g.View, g.Length, acc.View);
        else accumulate(d.GridFor(g.Length), g.View, g.Length, acc.View);
    }
}
