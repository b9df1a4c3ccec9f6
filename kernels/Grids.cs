// Xception.Gpu.Kernels: device code only. Every method here is a static ILGPU kernel (explicitly grouped,
// so that the launcher picks the group size per accelerator) or a small helper inlined into kernels.
//
// Legend, used in every shape comment:
//   N  batch            H, W  input height and width      OH, OW  output height and width
//   C  channels (in)    O     output channels / classes   K       GEMM reduction length
//   M  rows = N*H*W (or N*OH*OW) when a tensor is seen as a [M, C] matrix
// Tensors are NHWC (Keras' layout): channel is the fastest index, so neighbouring threads on a GPU touch
// neighbouring channels and the loads coalesce. Weights keep Keras' layouts:
//   conv [KH, KW, C, O], depthwise [KH, KW, C] (multiplier 1), pointwise [C, O], dense [C, O].
// Gradients carry the prefix d (dx, dw). Parameter order: inputs, then scalar arguments, then outputs.
//
// Most kernels are grid-stride loops: thread t handles items t, t + T, t + 2T, ... where T is the number of
// threads launched. On a GPU the launcher starts enough groups to fill the chip; on the CPU accelerator it
// starts a few small groups per core, which avoids ILGPU's per-group barrier (README, 'What is here'; the
// measured group sizes are at Device.CpuThreadsPerWarp and CpuGroupsPerCore in Xception.Gpu/Runtime/Device.cs).
// Loops read Grids.Stride into a local once: on the CPU accelerator every read of Grid/Group dimensions is
// a thread-local lookup, and reading it per iteration made a ReLU over 2.8 M values take 311 ms instead of 4 ms (measured).
namespace Xception.Gpu.Kernels;

using ILGPU;

/// <summary>Helpers shared by the kernels (inlined by ILGPU).</summary>
public static class Grids
{
    /// <summary>This thread's first item of a grid-stride loop.</summary>
    public static int Start => Grid.GlobalIndex.X;

    /// <summary>The stride of a grid-stride loop: the number of threads launched.</summary>
    public static int Stride => Grid.DimX * Group.DimX;
}
