using ILGPU;
using ILGPU.Runtime;
using Device = Xception.Gpu.Runtime.Device;
using Xception.Gpu.Kernels.Cpu;

namespace Xception.Gpu.Ops;

/// <summary>
/// The CPU accelerator's vectorized element maps (<see cref="ElementwiseCpuKernels.Map"/>), shared by the
/// activation and residual ops: loaded once per device, one band of elements per core.
/// </summary>
internal sealed class CpuMap
{
    readonly Device d;
    readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int, int, ArrayView<float>> map;

    CpuMap(Device d)
    {
        this.d = d;
        map = d.Load("elementwise.cpu_simd.map", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int, int, ArrayView<float>>(ElementwiseCpuKernels.Map));
    }

    /// <summary>The map on a CPU accelerator; null where the ops run their GPU kernels.</summary>
    public static CpuMap? On(Device d) => d.UsesGpuKernels ? null : d.Op(x => new CpuMap(x));

    /// <summary>y[i] = op(a[i], b[i]) for i &lt; n; y may be a or b.</summary>
    public void Run(MapOp op, ArrayView<float> a, ArrayView<float> b, int n, ArrayView<float> y) =>
        map(d.CpuWorkers, a, b, n, (int)op, d.CpuCores, y);
}
