using Xunit;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Xception.Gpu.Tests;

/// <summary>
/// The backends every op test runs on: the CPU accelerator (CPU kernel variants), a GPU-shaped CPU
/// accelerator (the GPU variants: shared-memory tiles and barriers, run on the CPU), and CUDA when the
/// machine has a CUDA device, else a visible skip. Devices are opened once and shared by the tests.
/// </summary>
public static class Backends
{
    public const string Cpu = "cpu", GpuShapedCpu = "gpu-shaped-cpu", Cuda = "cuda";

    public static TheoryData<string> All => new(Cpu, GpuShapedCpu, Cuda);

    static readonly Dictionary<string, Device?> open = new();
    static readonly Lazy<bool> hasCuda = new(() => Device.List().Any(d => d.Kind == DeviceKind.Cuda && d.Usable));

    public static bool HasCuda => hasCuda.Value;

    /// <summary>The shared device for a backend; skips the test when the machine lacks it.</summary>
    public static Device Get(string backend)
    {
        lock (open)
        {
            if (backend == Cuda && !HasCuda) Assert.Skip("no CUDA device on this machine");
            if (!open.TryGetValue(backend, out var d))
            {
                d = backend switch
                {
                    Cpu => Device.Open("cpu"),
                    GpuShapedCpu => Device.OpenGpuShapedCpu(),
                    Cuda => Device.Open("cuda"),
                    _ => throw new ArgumentException(backend),
                };
                open[backend] = d;
            }
            return d!;
        }
    }
}
