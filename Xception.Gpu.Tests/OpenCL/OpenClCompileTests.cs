using System.Reflection;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.OpenCL;
using ILGPU.Runtime;
using Device = Xception.Gpu.Runtime.Device;
using ILGPU.Runtime.OpenCL;
using Xunit;

namespace Xception.Gpu.Tests.OpenCL;

/// <summary>
/// Every kernel in kernels/ must compile to OpenCL C 2.0 (ILGPU's OpenCL backend needs 2.0's generic
/// address space, which no OpenCL device on this machine reports, so nothing runs here): ILGPU generates the
/// source as it would for an OpenCL 2.0 GPU, then Mesa rusticl's compiler builds it with -cl-std=CL2.0.
/// Skipped, visibly, where no OpenCL runtime is installed; set XCEPTION_REQUIRE_OPENCL=1 (CI does) to
/// turn the skip into a failure.
/// </summary>
public class OpenClCompileTests
{
    /// <summary>
    /// Every GPU kernel entry point: public static void methods of the kernels assembly's static classes, except
    /// those marked CpuOnlyKernels (SIMD code that only the CPU accelerator runs).
    /// </summary>
    public static IEnumerable<MethodInfo> GpuKernels() =>
        typeof(Kernels.GemmKernels).Assembly.GetTypes()
            .Where(t => t.IsPublic && t.IsAbstract && t.IsSealed) // static classes
            .Where(t => !t.IsDefined(typeof(Kernels.Cpu.CpuOnlyKernelsAttribute), false))
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Static | BindingFlags.DeclaredOnly))
            .Where(m => m.ReturnType == typeof(void) && !m.IsSpecialName)
            .OrderBy(m => m.DeclaringType!.Name + "." + m.Name);

    /// <summary>The GPU kernels OpenCL runs: all but those marked TensorCoreKernels (CUDA and the GPU-shaped CPU only).</summary>
    public static IEnumerable<MethodInfo> Kernels() =>
        GpuKernels().Where(m => !m.DeclaringType!.IsDefined(typeof(Kernels.TensorCoreKernelsAttribute), false));

    [Fact]
    public void KernelListCoversEveryOp()
    {
        var names = Kernels().Select(m => m.DeclaringType!.Name + "." + m.Name).ToHashSet();
        foreach (var n in new[] { "GemmKernels.Tiled", "Conv2DKernels.Forward", "Conv2DKernels.BackwardInput", "Conv2DKernels.BackwardWeightPartials",
                     "DepthwiseKernels.Forward", "DepthwiseKernels.BackwardInput", "DepthwiseKernels.BackwardWeightPartials", "PointwiseKernels.Gather", "PointwiseKernels.Scatter",
                     "MaxPoolKernels.Forward", "MaxPoolKernels.Backward", "GlobalAvgPoolKernels.Forward", "GlobalAvgPoolKernels.Backward", "BatchNormKernels.Normalize",
                     "BatchNormKernels.BackwardInput", "ActivationKernels.ReluForward", "ActivationKernels.EluBackward", "ElementwiseKernels.Add", "DropoutKernels.Forward",
                     "LossKernels.SoftmaxCrossEntropy", "LossKernels.SigmoidCrossEntropy", "OptimizerKernels.Sgd", "OptimizerKernels.RmsProp", "ReduceKernels.SumRows" })
            Assert.Contains(n, names);
    }

    /// <summary>
    /// The library's kernel catalog (what the PTX check and `xception kernels` go through) lists exactly the
    /// kernel methods found here by reflection: a new kernel without a catalog entry would escape those checks.
    /// </summary>
    [Fact]
    public void KernelCatalogCoversEveryKernel()
    {
        var found = GpuKernels().Select(m => m.DeclaringType!.Name + "." + m.Name).ToHashSet();
        var listed = Gpu.Diagnostics.KernelCatalog.All.Select(e => e.Name).ToList();
        Assert.Equal(listed.Count, listed.Distinct().Count());
        Assert.Empty(found.Except(listed));
        Assert.Empty(listed.Except(found));
        foreach (var e in Gpu.Diagnostics.KernelCatalog.All)
        {
            Assert.InRange(e.GroupSize, 32, 1024);
            Assert.True(e.GroupSize % 32 == 0, $"{e.Name}: group size {e.GroupSize} is not whole warps");
        }
    }

    [Fact]
    public void EveryKernelCompilesToOpenClC20()
    {
        using var cl = OpenClRuntime.TryOpen(out var reason);
        if (cl is null)
        {
            if (Environment.GetEnvironmentVariable("XCEPTION_REQUIRE_OPENCL") == "1")
                Assert.Fail($"XCEPTION_REQUIRE_OPENCL=1 but {reason}");
            Assert.Skip(reason);
        }
        using var context = Context.Create(b => b.EnableAlgorithms());
        // What an OpenCL 2.0 GPU with generic address space would report.
        var caps = new CLCapabilityContext(float16: false, float64: false, genericAddressSpace: true, int64_Atomics: false, subGroups: false);
        using var backend = new CLBackend(context, caps, CLDeviceVendor.Other, CLCVersion.CL20);
        var failures = new List<string>();
        int count = 0;
        foreach (var method in Kernels())
        {
            string name = method.DeclaringType!.Name + "." + method.Name;
            string source;
            try
            {
                var entry = EntryPointDescription.FromExplicitlyGroupedKernel(method);
                var spec = new KernelSpecialization(null, null);
                source = ((CLCompiledKernel)backend.Compile(entry, spec)).Source;
            }
            catch (Exception e)
            {
                failures.Add($"{name}: ILGPU could not generate OpenCL C: {e.GetBaseException().Message}");
                continue;
            }
            var log = cl.Build(source, "-cl-std=CL2.0");
            if (log is not null) failures.Add($"{name}: {log}");
            count++;
        }
        Assert.True(failures.Count == 0, $"on {cl.Description}:\n" + string.Join("\n", failures));
        Assert.True(count >= 25, $"only {count} kernels compiled");
        TestContext.Current.SendDiagnosticMessage($"{count} kernels compiled to OpenCL C 2.0 on {cl.Description}");
    }
}
