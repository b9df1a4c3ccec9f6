using System.Diagnostics;
using System.Text.RegularExpressions;
using Xception.Gpu.Diagnostics;
using Xception.Gpu.Ops;
using Xunit;

namespace Xception.Gpu.Tests.Cuda;

/// <summary>
/// The CUDA code, checked without a GPU: ILGPU generates every catalog kernel's PTX for sm_80 and sm_90 as the
/// CUDA accelerator would, and NVIDIA's ptxas assembles it. A kernel fails when ptxas rejects it, when it
/// spills, when its registers times its launch's group size exceed the 65,536 a group may have (the launch
/// would fail with "too many resources requested"), or when its shared memory exceeds its budget.
/// Skipped, visibly, without ptxas (XCEPTION_PTXAS or ptxas on PATH; .ci/run fetches Debian's);
/// XCEPTION_REQUIRE_PTXAS=1 (CI sets it) turns the skip into a failure.
/// </summary>
public class PtxAssemblyTests
{
    const int RegistersPerGroup = 65_536;

    public static TheoryData<string> Architectures => new(KernelPtx.Architectures);

    /// <summary>The ptxas to use, or a skip (a failure when CI requires ptxas).</summary>
    internal static string RequirePtxas()
    {
        var ptxas = Ptxas.Find(out var reason);
        if (ptxas is not null) return ptxas;
        if (Environment.GetEnvironmentVariable("XCEPTION_REQUIRE_PTXAS") == "1")
            Assert.Fail($"XCEPTION_REQUIRE_PTXAS=1 but {reason}");
        Assert.Skip(reason);
        return null!;
    }

    [Theory]
    [MemberData(nameof(Architectures))]
    public void EveryKernelAssemblesWithinItsLaunchLimits(string arch)
    {
        var ptxas = RequirePtxas();
        var clock = Stopwatch.StartNew();
        var generated = KernelPtx.Generate(arch);
        var generateTime = clock.Elapsed;
        var failures = new List<string>();
        foreach (var g in generated)
        {
            var k = g.Kernel;
            if (g.Ptx is null) { failures.Add($"{k.Name}: ILGPU could not generate PTX: {g.Error}"); continue; }
            // ptxas 11.8 reads ISA 7.8 at most; a newer header would fail every kernel with one cryptic line.
            Assert.Contains(".version 7.8", g.Ptx);
            PtxasReport r;
            try { r = Ptxas.Assemble(ptxas, g.Ptx, arch); }
            catch (XceptionException e) { failures.Add($"{k.Name}: {e.Message}"); continue; }
            if (r.SpillBytes > 0)
                failures.Add($"{k.Name}: spills ({r.SpillStoreBytes} bytes stored, {r.SpillLoadBytes} loaded) with {r.Registers} registers");
            if ((long)r.Registers * k.GroupSize > RegistersPerGroup)
                failures.Add($"{k.Name}: {r.Registers} registers x {k.GroupSize} threads = {r.Registers * k.GroupSize} > {RegistersPerGroup}, the launch would fail");
            if (r.SharedBytes > k.SharedMemoryBudget)
                failures.Add($"{k.Name}: {r.SharedBytes} bytes of shared memory > its budget of {k.SharedMemoryBudget}");
        }
        Assert.True(failures.Count == 0, $"{arch}, {Ptxas.Version(ptxas)}:\n" + string.Join("\n", failures));
        Assert.Equal(KernelCatalog.All.Count, generated.Count);
        TestContext.Current.SendDiagnosticMessage(
            $"{arch}: {generated.Count} kernels, PTX generated in {generateTime.TotalSeconds:F1} s, assembled in {(clock.Elapsed - generateTime).TotalSeconds:F1} s ({Ptxas.Version(ptxas)})");
    }

    /// <summary>The PTX itself needs no ptxas: every kernel must generate, with the ISA header ptxas 11.8 reads.</summary>
    [Fact]
    public void EveryKernelGeneratesPtxWithoutADevice()
    {
        var generated = KernelPtx.Generate("sm_90");
        var errors = generated.Where(g => g.Ptx is null).Select(g => $"{g.Kernel.Name}: {g.Error}").ToList();
        Assert.True(errors.Count == 0, string.Join("\n", errors));
        // ILGPU targets at most sm_80 PTX (newer GPUs JIT it, as the driver does for an H100): what ptxas then
        // assembles for sm_90 is what an H100 runs.
        Assert.All(generated, g => Assert.Contains(".target sm_80", g.Ptx!));
        Assert.All(generated, g => Assert.Contains(".entry", g.Ptx!));
    }

    /// <summary>
    /// The catalog's premise, read from the ops' sources: every op loads its kernels explicitly grouped (a
    /// KernelConfig launch; an auto-grouped load would be generated differently), and every kernel an op loads
    /// is in the catalog.
    /// </summary>
    [Fact]
    public void OpsLoadOnlyCatalogKernelsExplicitlyGrouped()
    {
        string root;
        try { root = Keras.KerasReference.RepoRoot(); }
        catch (InvalidOperationException) { Assert.Skip("the library's sources are not beside the test binaries"); return; }
        var names = KernelCatalog.All.Select(e => e.Name).ToHashSet();
        var loaded = new HashSet<string>();
        foreach (var file in Directory.EnumerateFiles(Path.Combine(root, "Xception.Gpu", "Ops"), "*.cs"))
        {
            var text = File.ReadAllText(file);
            Assert.DoesNotMatch(@"LoadAutoGrouped|LoadImplicitlyGrouped", text);
            foreach (Match m in Regex.Matches(text, @"LoadStreamKernel<[^(]*>\((\w+Kernels\.\w+)\)"))
                loaded.Add(m.Groups[1].Value);
        }
        Assert.True(loaded.Count >= 30, $"found only {loaded.Count} kernel loads in the ops");
        // The CPU accelerator's SIMD kernels are outside the GPU catalog by design (they cannot compile for a GPU).
        var cpuOnly = typeof(Gpu.Kernels.Cpu.CpuOnlyKernelsAttribute).Assembly.GetTypes()
            .Where(t => t.IsDefined(typeof(Gpu.Kernels.Cpu.CpuOnlyKernelsAttribute), false))
            .SelectMany(t => t.GetMethods().Select(m => $"{t.Name}.{m.Name}")).ToHashSet();
        Assert.Empty(loaded.Except(names).Except(cpuOnly));
    }

    /// <summary>
    /// The tensor-core kernels are tensor-core code: their machine code for each architecture holds the HMMA
    /// instructions of both formats (m16n8k8 TF32 and m16n8k16 bf16), as cuobjdump (beside ptxas) shows them.
    /// </summary>
    [Theory]
    [MemberData(nameof(Architectures))]
    public void TheTensorCoreKernelsAssembleToHmma(string arch)
    {
        var ptxas = RequirePtxas();
        var cuobjdump = Ptxas.FindCuobjdump(ptxas);
        if (cuobjdump is null)
        {
            if (Environment.GetEnvironmentVariable("XCEPTION_REQUIRE_PTXAS") == "1") Assert.Fail($"XCEPTION_REQUIRE_PTXAS=1 but no cuobjdump beside {ptxas}");
            Assert.Skip($"no cuobjdump beside {ptxas}");
        }
        var kernels = KernelCatalog.All.Where(k => k.Method.DeclaringType!.IsDefined(typeof(Xception.Gpu.Kernels.TensorCoreKernelsAttribute), false)).ToList();
        Assert.Equal(["ConvTensorCoreKernels.BackwardInput", "ConvTensorCoreKernels.BackwardWeight", "ConvTensorCoreKernels.Forward",
            "GemmTensorCoreKernels.Tiled", "MmaKernels.Tile"], kernels.Select(k => k.Name).Order());
        foreach (var g in KernelPtx.Generate(arch, kernels))
        {
            Assert.True(g.Ptx is not null, $"{g.Kernel.Name}: {g.Error}");
            Assert.Contains("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32", g.Ptx);
            Assert.Contains("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", g.Ptx);
            var sass = Ptxas.Sass(ptxas, cuobjdump!, g.Ptx!, arch);
            Assert.Contains("HMMA.1688.F32.TF32", sass);
            Assert.Contains("HMMA.16816.F32.BF16", sass);
            // The tile's inner step: 2 x 4 fragments, two k8 halves in TF32 and one k16 in bf16.
            if (g.Kernel.Name != "MmaKernels.Tile") Assert.True(Ptxas.TensorCoreInstructions(sass) >= 24, $"{g.Kernel.Name}:\n{sass}");
        }
    }

    [Fact]
    public void ParsesAPtxasReport()
    {
        const string output = """
            ptxas info    : 0 bytes gmem
            ptxas info    : Compiling entry function 'Kernel' for 'sm_90'
            ptxas info    : Function properties for Kernel
                8 bytes stack frame, 4 bytes spill stores, 12 bytes spill loads
            ptxas info    : Used 56 registers, 8192 bytes smem, 424 bytes cmem[0]
            """;
        Assert.Equal(new PtxasReport(56, 8192, 4, 12, 8), Ptxas.Parse(output));
        // No shared memory: ptxas leaves the smem field out.
        Assert.Equal(0, Ptxas.Parse("ptxas info    : Used 12 registers, 380 bytes cmem[0]").SharedBytes);
        Assert.Throws<Gpu.Diagnostics.ExternalToolException>(() => Ptxas.Parse("ptxas fatal   : Unresolved extern function 'x'"));
    }

    [Fact]
    public void OccupancyFollowsTheHopperLimits()
    {
        // 56 registers: 1,792 per warp (already a multiple of 256), 36 warps fit, 4 groups of 8 warps: 50%.
        var gemm = Occupancy.Hopper(56, 8192, 256);
        Assert.Equal((4, 0.5, "registers"), (gemm.GroupsPerSm, gemm.Fraction, gemm.Limiter));
        // 30 registers round up to 32 per thread (1,024 per warp): 64 warps, all 2,048 threads.
        var small = Occupancy.Hopper(30, 0, 256);
        Assert.Equal((8, 1.0, "threads"), (small.GroupsPerSm, small.Fraction, small.Limiter));
        // 100 KB of shared memory (plus 1 KB reserved) leaves room for 2 groups.
        Assert.Equal(2, Occupancy.Hopper(16, 100 * 1024, 128).GroupsPerSm);
        // Tiny groups hit the 32-group limit: 32 x 32 threads = half the SM.
        var tiny = Occupancy.Hopper(16, 0, 32);
        Assert.Equal((32, 0.5, "groups"), (tiny.GroupsPerSm, tiny.Fraction, tiny.Limiter));
    }
}
