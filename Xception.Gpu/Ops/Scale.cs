using ILGPU;
using ILGPU.Runtime;
using Device = Xception.Gpu.Runtime.Device;
using Xception.Gpu.Kernels;

namespace Xception.Gpu.Ops;

/// <summary>
/// x *= factor in place on the device. Data-parallel replicas scale their loss gradient by their share of
/// the global batch with it, instead of copying the gradient to the host and back every step; it is one
/// float32 multiply per value, so the result has the same bits as the same multiply on the host.
/// </summary>
public sealed class Scale
{
    const string Name = "scale";
    readonly Device d;
    readonly Action<KernelConfig, ArrayView<float>, float, int> scale;

    Scale(Device d)
    {
        this.d = d;
        scale = d.Load("scale.in_place", a => a.LoadStreamKernel<ArrayView<float>, float, int>(ElementwiseKernels.Scale));
    }

    public static Scale On(Device d) => d.Op(x => new Scale(x));

    /// <summary>Multiplies every value of <paramref name="x"/> by <paramref name="factor"/>.</summary>
    public void InPlace(Tensor<float> x, float factor)
    {
        if (!float.IsFinite(factor)) throw new OpArgumentException(Name, $"the factor must be finite, got {factor}");
        if (x.Length == 0) return;
        scale(d.GridFor(x.Length), x.View, factor, x.Length);
    }

    /// <summary>The float64 reference: x * factor.</summary>
    internal static class Reference
    {
        public static double[] Scaled(double[] x, double factor) => x.Select(v => v * factor).ToArray();
    }
}
