namespace Xception.Gpu.Diagnostics;

using System.Reflection;
using Xception.Gpu.Kernels;

/// <summary>
/// One kernel entry point as the ops launch it on a GPU. Every op loads its kernels with
/// <c>LoadStreamKernel</c> over a delegate whose first parameter is a <c>KernelConfig</c>, so every kernel is
/// explicitly grouped: the group size below is the one the op passes, and the code generated for a static
/// check must come from <c>EntryPointDescription.FromExplicitlyGroupedKernel</c> too.
/// </summary>
/// <param name="Method">The kernel method in the kernels assembly.</param>
/// <param name="GroupSize">Threads per group of the op's GPU launch.</param>
/// <param name="SharedMemoryBudget">
/// The most shared memory (bytes) the kernel may use per group: the kernels allocate it statically
/// (<c>SharedMemory.Allocate</c>), and CUDA caps static shared memory at 48 KB per group.
/// </param>
/// <param name="GpuLaunched">
/// False for a kernel the ops launch only on the CPU accelerator. Such a kernel is still listed, and still checked,
/// so that a change of that choice meets no surprise. (The SIMD kernels marked CpuOnlyKernels are not listed:
/// they cannot be compiled for a GPU at all.)
/// </param>
public sealed record KernelEntry(MethodInfo Method, int GroupSize, int SharedMemoryBudget, bool GpuLaunched)
{
    /// <summary>Class and method, e.g. <c>GemmKernels.Tiled</c>.</summary>
    public string Name => $"{Method.DeclaringType!.Name}.{Method.Name}";
}

/// <summary>
/// Every kernel entry point of the kernels assembly with the launch shape its op uses on a GPU: what a static
/// check of the generated PTX (registers x group size, shared memory) needs to know, and the one list of them.
/// The test suite checks that it covers every public static void method of the kernels' static classes.
/// </summary>
public static class KernelCatalog
{
    /// <summary>
    /// Group size of <see cref="Xception.Gpu.Runtime.Device.GridFor"/> on a GPU, which every grid-stride kernel is launched with.
    /// Device.GridFor keeps its own constant; the two must agree (256 in both as of this writing).
    /// </summary>
    public const int GridStrideGroupSize = 256;

    /// <summary>CUDA's limit on static shared memory per group (larger needs dynamic shared memory and an opt-in).</summary>
    public const int StaticSharedMemoryLimit = 48 * 1024;

    /// <summary>All entries, ordered by name.</summary>
    public static IReadOnlyList<KernelEntry> All { get; } = Build();

    static List<KernelEntry> Build()
    {
        var list = new List<KernelEntry>();
        // nameof keeps a renamed kernel a compile error here instead of a missing entry at run time.
        void GridStride(Type t, params string[] names)
        {
            foreach (var n in names) list.Add(new(Method(t, n), GridStrideGroupSize, StaticSharedMemoryLimit, true));
        }
        GridStride(typeof(ActivationKernels), nameof(ActivationKernels.ReluForward), nameof(ActivationKernels.ReluBackward),
            nameof(ActivationKernels.EluForward), nameof(ActivationKernels.EluBackward));
        GridStride(typeof(BatchNormKernels), nameof(BatchNormKernels.SquaredDeviationPartials), nameof(BatchNormKernels.Statistics),
            nameof(BatchNormKernels.InverseStd), nameof(BatchNormKernels.Normalize), nameof(BatchNormKernels.BackwardPartials),
            nameof(BatchNormKernels.BackwardInput), nameof(BatchNormKernels.BackwardInputFrozen));
        // The weight-gradient partials go through Reductions.ChunkedSum, which launches with GridFor as well.
        GridStride(typeof(Conv2DKernels), nameof(Conv2DKernels.Forward), nameof(Conv2DKernels.BackwardInput),
            nameof(Conv2DKernels.BackwardWeightPartials));
        GridStride(typeof(DepthwiseKernels), nameof(DepthwiseKernels.Forward), nameof(DepthwiseKernels.BackwardInput),
            nameof(DepthwiseKernels.BackwardWeightPartials));
        GridStride(typeof(DropoutKernels), nameof(DropoutKernels.Forward), nameof(DropoutKernels.Backward));
        GridStride(typeof(ElementwiseKernels), nameof(ElementwiseKernels.Add), nameof(ElementwiseKernels.Accumulate),
            nameof(ElementwiseKernels.AddBias), nameof(ElementwiseKernels.Scale));
        GridStride(typeof(LossKernels), nameof(LossKernels.SoftmaxCrossEntropy), nameof(LossKernels.Softmax),
            nameof(LossKernels.SigmoidCrossEntropy));
        GridStride(typeof(OptimizerKernels), nameof(OptimizerKernels.Sgd), nameof(OptimizerKernels.RmsProp));
        GridStride(typeof(PointwiseKernels), nameof(PointwiseKernels.Gather), nameof(PointwiseKernels.Scatter));
        GridStride(typeof(MaxPoolKernels), nameof(MaxPoolKernels.Forward), nameof(MaxPoolKernels.Backward));
        GridStride(typeof(GlobalAvgPoolKernels), nameof(GlobalAvgPoolKernels.Forward), nameof(GlobalAvgPoolKernels.Backward));
        GridStride(typeof(ReduceKernels), nameof(ReduceKernels.SumRows));
        GridStride(typeof(ColumnSumKernels), nameof(ColumnSumKernels.Partials));
        // Gemm: the tiled kernel needs exactly its group size (it maps 256 threads onto a 128 x 64 tile).
        list.Add(new(Method(typeof(GemmKernels), nameof(GemmKernels.Tiled)), GemmKernels.GpuGroupSize, StaticSharedMemoryLimit, true));
        // The tensor-core GEMM: 4 warps on a 64 x 64 tile; the rounding of operands for devices without tensor cores.
        list.Add(new(Method(typeof(GemmTensorCoreKernels), nameof(GemmTensorCoreKernels.Tiled)), GemmTensorCoreKernels.GroupSize, StaticSharedMemoryLimit, true));
        // The convolutions' implicit GEMMs run the same tile.
        foreach (var n in new[] { nameof(ConvTensorCoreKernels.Forward), nameof(ConvTensorCoreKernels.BackwardInput), nameof(ConvTensorCoreKernels.BackwardWeight) })
            list.Add(new(Method(typeof(ConvTensorCoreKernels), n), GemmTensorCoreKernels.GroupSize, StaticSharedMemoryLimit, true));
        GridStride(typeof(RoundKernels), nameof(RoundKernels.Round));
        // One warp's MMA on whole matrices: launched by the tests (one warp), and the plainest kernel holding each HMMA.
        list.Add(new(Method(typeof(MmaKernels), nameof(MmaKernels.Tile)), 32, StaticSharedMemoryLimit, true));
        return list.OrderBy(e => e.Name, StringComparer.Ordinal).ToList();
    }

    static MethodInfo Method(Type t, string name) =>
        t.GetMethod(name, BindingFlags.Public | BindingFlags.Static | BindingFlags.DeclaredOnly)
        ?? throw new InvalidOperationException($"kernel {t.Name}.{name} not found");
}
