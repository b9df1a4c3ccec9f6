namespace Xception.Gpu.Kernels;

/// <summary>
/// Marks kernels that run only where a device has tensor cores (CUDA, compute capability 8.0 and newer) or emulates
/// them (the GPU-shaped CPU accelerator): their warp shuffles and inline PTX have no OpenCL C form in ILGPU 1.5.3, and
/// no op launches them on OpenCL. They are still in the kernel catalog and assembled by ptxas.
/// </summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class TensorCoreKernelsAttribute : Attribute;
