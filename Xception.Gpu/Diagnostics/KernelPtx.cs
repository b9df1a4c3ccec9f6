namespace Xception.Gpu.Diagnostics;

using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Backends;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

/// <summary>One kernel's PTX, or why ILGPU could not generate it.</summary>
public sealed record KernelPtxResult(KernelEntry Kernel, string? Ptx, string? Error);

/// <summary>
/// Generates the kernels' PTX without a GPU: ILGPU's PTX backend needs only a target architecture and a PTX
/// instruction set, not a device, so CI can check the CUDA code (with ptxas, <see cref="Ptxas"/>) on any machine.
/// </summary>
public static class KernelPtx
{
    /// <summary>
    /// PTX ISA 7.8: the newest that ptxas 11.8 (Debian's nvidia-cuda-toolkit, the one CI can install) reads.
    /// ILGPU's code is the same for newer ISAs except for the <c>.version</c> header, so nothing is lost.
    /// </summary>
    public static readonly CudaInstructionSet InstructionSet = new(7, 8);

    /// <summary>The architectures the check supports: Ampere (A100) and Hopper (H100/H200).</summary>
    public static readonly IReadOnlyList<string> Architectures = ["sm_80", "sm_90"];

    /// <summary>"sm_80" to CUDA 8.0; null for anything outside <see cref="Architectures"/>.</summary>
    public static CudaArchitecture? ParseArchitecture(string name) => name switch
    {
        "sm_80" => new CudaArchitecture(8, 0),
        "sm_90" => new CudaArchitecture(9, 0),
        _ => null,
    };

    /// <summary>
    /// PTX of each kernel for <paramref name="architecture"/> ("sm_80" or "sm_90"), generated as the CUDA
    /// accelerator would (explicitly grouped entry points, algorithms enabled, optimization O1 as in
    /// <see cref="Device"/>). A kernel that fails gets its error and the others still get their PTX.
    /// ILGPU 1.5.3 writes <c>.target sm_80</c> for any newer architecture too; ptxas (or the driver, on an
    /// H100) then compiles that PTX for the real one, so the architecture matters at assembly.
    /// </summary>
    public static IReadOnlyList<KernelPtxResult> Generate(string architecture, IEnumerable<KernelEntry>? kernels = null)
    {
        var arch = ParseArchitecture(architecture)
            ?? throw new ExternalToolException($"unknown CUDA architecture '{architecture}'; known: {string.Join(", ", Architectures)}");
        var results = new List<KernelPtxResult>();
        Context? context = null;
        PTXBackend? backend = null;
        try
        {
            foreach (var k in kernels ?? KernelCatalog.All)
            {
                if (backend is null)
                {
                    context = Context.Create(b => b.EnableAlgorithms().Optimize(OptimizationLevel.O1));
                    // No NVVM: ILGPU's own PTX generator, the one the CUDA accelerator uses by default
                    // (the parameter is optional but not annotated as nullable).
                    backend = new PTXBackend(context, arch, InstructionSet, null!);
                }
                try
                {
                    var entry = EntryPointDescription.FromExplicitlyGroupedKernel(k.Method);
                    var compiled = (PTXCompiledKernel)backend.Compile(entry, new KernelSpecialization(null, null));
                    results.Add(new(k, compiled.PTXAssembly, null));
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    results.Add(new(k, null, OneLine(e)));
                    // ILGPU leaves a context unusable after a failed compile (later compiles throw
                    // NullReferenceException): start the next kernel on a fresh one.
                    backend.Dispose(); context!.Dispose();
                    backend = null; context = null;
                }
            }
        }
        finally
        {
            backend?.Dispose();
            context?.Dispose();
        }
        return results;
    }

    static string OneLine(Exception e)
    {
        var root = e.GetBaseException();
        var m = root == e ? e.Message : $"{e.Message.TrimEnd('.')}: {root.Message}";
        int nl = m.IndexOf('\n');
        return nl < 0 ? m : m[..nl].TrimEnd();
    }
}

/// <summary>What <c>ptxas -v</c> reports for one kernel.</summary>
/// <param name="Registers">Registers per thread.</param>
/// <param name="SharedBytes">Static shared memory per group.</param>
/// <param name="SpillStoreBytes">Bytes spilled to local memory (stores), over the kernel and its callees.</param>
/// <param name="SpillLoadBytes">Bytes reloaded from spills.</param>
/// <param name="StackBytes">Stack frame per thread.</param>
public sealed record PtxasReport(int Registers, int SharedBytes, int SpillStoreBytes, int SpillLoadBytes, int StackBytes)
{
    /// <summary>Spill stores and loads together.</summary>
    public int SpillBytes => SpillStoreBytes + SpillLoadBytes;
}

/// <summary>
/// Runs NVIDIA's PTX assembler, the same compiler the driver applies to PTX at load time, to learn what a kernel
/// costs on a given architecture (registers, shared memory, spills) without a GPU.
/// </summary>
public static partial class Ptxas
{
    /// <summary>The environment variable that names the ptxas executable; otherwise ptxas is looked for on PATH.</summary>
    public const string EnvironmentVariable = "XCEPTION_PTXAS";

    /// <summary>
    /// The ptxas to use: <see cref="EnvironmentVariable"/> when set, else the first ptxas on PATH; null with
    /// <paramref name="reason"/> saying why when there is none.
    /// </summary>
    public static string? Find(out string reason)
    {
        var env = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrEmpty(env))
        {
            reason = File.Exists(env) ? "" : $"{EnvironmentVariable}={env} does not exist";
            return File.Exists(env) ? env : null;
        }
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var p = Path.Combine(dir, OperatingSystem.IsWindows() ? "ptxas.exe" : "ptxas");
            if (File.Exists(p)) { reason = ""; return p; }
        }
        reason = $"no ptxas: {EnvironmentVariable} is not set and none is on PATH";
        return null;
    }

    /// <summary>The release line of <c>ptxas --version</c>, e.g. "Cuda compilation tools, release 11.8, V11.8.89".</summary>
    public static string Version(string ptxas)
    {
        var (code, output) = Execute(ptxas, ["-V"]);
        var line = output.Split('\n').FirstOrDefault(l => l.Contains("release", StringComparison.Ordinal))?.Trim();
        return code == 0 && line is not null ? line : "unknown version";
    }

    /// <summary>
    /// Assembles <paramref name="ptx"/> for <paramref name="architecture"/> (e.g. "sm_90") and reads the
    /// resource report. Throws <see cref="XceptionException"/> with ptxas' first error when it rejects the code.
    /// </summary>
    public static PtxasReport Assemble(string ptxas, string ptx, string architecture) =>
        InTempFolder(dir => Parse(Compile(ptxas, ptx, architecture, dir)));

    /// <summary>
    /// cuobjdump, NVIDIA's disassembler, beside <paramref name="ptxas"/> (the same package ships both), or null.
    /// </summary>
    public static string? FindCuobjdump(string ptxas)
    {
        var p = Path.Combine(Path.GetDirectoryName(ptxas) ?? ".", OperatingSystem.IsWindows() ? "cuobjdump.exe" : "cuobjdump");
        return File.Exists(p) ? p : null;
    }

    /// <summary>The machine code ptxas makes of <paramref name="ptx"/>, as <c>cuobjdump -sass</c> prints it.</summary>
    public static string Sass(string ptxas, string cuobjdump, string ptx, string architecture) => InTempFolder(dir =>
    {
        Compile(ptxas, ptx, architecture, dir);
        var (code, output) = Execute(cuobjdump, ["-sass", Path.Combine(dir, "kernel.cubin")]);
        if (code != 0) throw new ExternalToolException($"cuobjdump exited with {code}: {output.Trim().Split('\n')[0]}");
        return output;
    });

    /// <summary>The tensor-core instructions (HMMA) in SASS text.</summary>
    public static int TensorCoreInstructions(string sass) => sass.Split('\n').Count(l => l.Contains("HMMA.", StringComparison.Ordinal));

    static T InTempFolder<T>(Func<string, T> work)
    {
        var dir = Directory.CreateTempSubdirectory("xception-ptxas-");
        try { return work(dir.FullName); }
        finally
        {
            try { dir.Delete(true); } catch (IOException) { }
        }
    }

    /// <summary>Assembles into <paramref name="dir"/>/kernel.cubin; returns ptxas' report.</summary>
    static string Compile(string ptxas, string ptx, string architecture, string dir)
    {
        var input = Path.Combine(dir, "kernel.ptx");
        File.WriteAllText(input, ptx);
        // -arch=, not the long option: same meaning, and ptxas has accepted it in every release.
        var (code, output) = Execute(ptxas, ["-v", $"-arch={architecture}", "-o", Path.Combine(dir, "kernel.cubin"), input]);
        if (code != 0)
        {
            var first = output.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.Contains("error", StringComparison.OrdinalIgnoreCase) || l.Contains("fatal", StringComparison.OrdinalIgnoreCase))
                ?? output.Trim().Split('\n')[0];
            throw new ExternalToolException($"ptxas ({architecture}) exited with {code}: {first}");
        }
        return output;
    }

    /// <summary>Reads <c>ptxas -v</c> output: registers and shared memory of the entry, spills and stack summed over every function.</summary>
    public static PtxasReport Parse(string output)
    {
        int regs = 0, smem = 0, stores = 0, loads = 0, stack = 0;
        foreach (Match m in UsedLine().Matches(output))
        {
            regs = Math.Max(regs, Int(m.Groups["regs"]));
            if (m.Groups["smem"].Success) smem = Math.Max(smem, Int(m.Groups["smem"]));
        }
        foreach (Match m in FrameLine().Matches(output))
        {
            stack = Math.Max(stack, Int(m.Groups["stack"]));
            stores += Int(m.Groups["stores"]);
            loads += Int(m.Groups["loads"]);
        }
        if (!UsedLine().IsMatch(output)) throw new ExternalToolException($"ptxas printed no resource usage: {output.Trim().Split('\n')[0]}");
        return new(regs, smem, stores, loads, stack);
    }

    static int Int(System.Text.RegularExpressions.Group g) => int.Parse(g.Value, CultureInfo.InvariantCulture);

    // "ptxas info    : Used 56 registers, 8192 bytes smem, 424 bytes cmem[0]" (smem absent when none is used).
    [GeneratedRegex(@"Used (?<regs>\d+) registers(?:, (?:\d+ bytes [a-z]+\[\d+\]|(?<smem>\d+) bytes smem))*")]
    private static partial Regex UsedLine();

    // "    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads"
    [GeneratedRegex(@"(?<stack>\d+) bytes stack frame, (?<stores>\d+) bytes spill stores, (?<loads>\d+) bytes spill loads")]
    private static partial Regex FrameLine();

    static (int Code, string Output) Execute(string exe, string[] args)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        Process p;
        try { p = Process.Start(psi) ?? throw new ExternalToolException($"could not start {exe}"); }
        catch (System.ComponentModel.Win32Exception e) { throw new ExternalToolException($"could not start {exe}: {e.Message}"); }
        using (p)
        {
            // Both streams read at once: ptxas writes its report to stdout and errors to stderr, and a full
            // pipe on one would block it while this waited on the other.
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(120_000))
            {
                try { p.Kill(); } catch (InvalidOperationException) { }
                throw new ExternalToolException($"{exe} did not finish within 120 s");
            }
            return (p.ExitCode, stdout.Result + stderr.Result);
        }
    }
}

/// <summary>
/// Occupancy of one kernel on a Hopper SM (H100, H200): how many of its groups fit at once, by the SM's limits
/// of 65,536 registers, 228 KB shared memory, 2,048 threads and 32 groups.
/// Rounding, as in NVIDIA's occupancy calculator for compute capability 9.0: registers are allocated per warp
/// in units of 256 (registers per thread x 32, rounded up to a multiple of 256), and a group takes whole
/// warps; shared memory is allocated per group in units of 128 bytes, plus 1 KB the CUDA runtime reserves for
/// every group on sm_80 and later.
/// </summary>
/// <param name="GroupsPerSm">Resident groups per SM: the minimum over the four limits.</param>
/// <param name="Fraction">Resident threads over the SM's 2,048.</param>
/// <param name="Limiter">The limit that gives that minimum: "registers", "shared", "threads" or "groups".</param>
public sealed record Occupancy(int GroupsPerSm, double Fraction, string Limiter)
{
    public const int SmRegisters = 65_536, SmSharedBytes = 228 * 1024, SmThreads = 2048, SmGroups = 32;
    public const int RegisterUnit = 256, SharedUnit = 128, SharedReservedPerGroup = 1024, WarpSize = 32;

    /// <summary>An A100 SM's shared memory: the one limit in which Ampere (sm_80) differs from Hopper here.</summary>
    public const int AmpereSharedBytes = 164 * 1024;

    /// <summary>Occupancy of a kernel using <paramref name="registers"/> per thread and <paramref name="sharedBytes"/> per group on an H100/H200 SM.</summary>
    public static Occupancy Hopper(int registers, int sharedBytes, int groupSize) => Compute(registers, sharedBytes, groupSize, SmSharedBytes);

    /// <summary>The same on an A100 SM (164 KB shared memory, the other limits as Hopper's).</summary>
    public static Occupancy Ampere(int registers, int sharedBytes, int groupSize) => Compute(registers, sharedBytes, groupSize, AmpereSharedBytes);

    /// <summary>Hopper for "sm_90", Ampere for "sm_80".</summary>
    public static Occupancy For(string architecture, int registers, int sharedBytes, int groupSize) => architecture switch
    {
        "sm_90" => Hopper(registers, sharedBytes, groupSize),
        "sm_80" => Ampere(registers, sharedBytes, groupSize),
        _ => throw new ArgumentException($"no SM limits for '{architecture}'", nameof(architecture)),
    };

    static Occupancy Compute(int registers, int sharedBytes, int groupSize, int smSharedBytes)
    {
        if (groupSize < 1 || groupSize > 1024) throw new ArgumentOutOfRangeException(nameof(groupSize), groupSize, "a group has 1 to 1024 threads");
        int warps = (groupSize + WarpSize - 1) / WarpSize;
        int regsPerWarp = Math.Max(1, (registers * WarpSize + RegisterUnit - 1) / RegisterUnit) * RegisterUnit;
        int byRegisters = SmRegisters / regsPerWarp / warps;
        int sharedPerGroup = (sharedBytes + SharedReservedPerGroup + SharedUnit - 1) / SharedUnit * SharedUnit;
        int byShared = smSharedBytes / sharedPerGroup;
        int byThreads = SmThreads / (warps * WarpSize);
        // On a tie the fixed limits (threads, groups) are named: a kernel's resources limit it only when they
        // alone keep groups out.
        var limits = new (int Groups, string Name)[] { (byThreads, "threads"), (SmGroups, "groups"), (byRegisters, "registers"), (byShared, "shared") };
        var min = limits.MinBy(l => l.Groups);
        return new(min.Groups, (double)min.Groups * warps * WarpSize / SmThreads, min.Name);
    }
}
