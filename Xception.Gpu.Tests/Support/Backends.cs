using Xunit;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Xception.Gpu.Tests;

/// <summary>
/// The backends every op test runs on: the CPU accelerator (CPU kernel variants), a GPU-shaped CPU
/// accelerator (the GPU variants: shared-memory tiles and barriers, run on the CPU), CUDA when the
/// machine has a CUDA device, and the first usable OpenCL device (Mesa rusticl's llvmpipe here and in CI,
/// through <see cref="OpenClCompat"/>), each else a visible skip. With XCEPTION_REQUIRE_OPENCL=1 (CI sets it)
/// a missing OpenCL device fails the tests instead, so CI cannot pass by skipping them. Devices are opened once
/// and shared by the tests (so each kernel compiles once per device).
/// </summary>
public static class Backends
{
    public const string Cpu = "cpu", GpuShapedCpu = "gpu-shaped-cpu", Cuda = "cuda", OpenCl = "opencl";

    public static TheoryData<string> All => new(Cpu, GpuShapedCpu, Cuda, OpenCl);

    static readonly Dictionary<string, Device?> open = new();
    static readonly Lazy<bool> hasCuda = new(() => Device.List().Any(d => d.Kind == DeviceKind.Cuda && d.Usable));

    public static bool HasCuda => hasCuda.Value;

    static readonly Lazy<DeviceInfo?> openCl = new(() => Device.List().FirstOrDefault(d => d.Kind == DeviceKind.OpenCL && d.Usable));

    /// <summary>True when CI demands the OpenCL backend (XCEPTION_REQUIRE_OPENCL=1).</summary>
    public static bool OpenClRequired => Environment.GetEnvironmentVariable("XCEPTION_REQUIRE_OPENCL") == "1";

    /// <summary>Skips, or fails when <see cref="OpenClRequired"/>, unless a usable OpenCL device exists.</summary>
    public static void RequireOpenCl()
    {
        if (openCl.Value is not null) return;
        var seen = Device.List().Where(d => d.Kind == DeviceKind.OpenCL).Select(d => $"{d.Id} ({d.Name}): {d.Note}").ToList();
        string why = seen.Count == 0 ? "no OpenCL device on this machine (install mesa-opencl-icd, set RUSTICL_ENABLE=llvmpipe)"
                                     : "no usable OpenCL device: " + string.Join("; ", seen);
        if (OpenClRequired) Assert.Fail("XCEPTION_REQUIRE_OPENCL=1 but " + why);
        Assert.Skip(why);
    }

    /// <summary>The shared device for a backend; skips the test when the machine lacks it.</summary>
    public static Device Get(string backend)
    {
        lock (open)
        {
            if (backend == Cuda && !HasCuda) Assert.Skip("no CUDA device on this machine");
            if (backend == OpenCl) RequireOpenCl();
            if (!open.TryGetValue(backend, out var d))
            {
                d = backend switch
                {
                    Cpu => Device.Open("cpu"),
                    GpuShapedCpu => Device.OpenGpuShapedCpu(),
                    Cuda => Device.Open("cuda"),
                    OpenCl => Device.Open(openCl.Value!.Id),
                    _ => throw new ArgumentException(backend),
                };
                open[backend] = d;
            }
            return d!;
        }
    }
}
