using System.Globalization;
using Xception.Gpu.Diagnostics;

namespace Xception.Gpu.Cli;

/// <summary>
/// `xception kernels`: what each GPU kernel costs on an NVIDIA SM, by static analysis of the PTX ILGPU generates
/// (ptxas' report), so a kernel change can be judged for registers, spills and occupancy on a machine without a GPU.
/// </summary>
static class KernelsCommand
{
    public static CliCommand Definition => new("kernels", "the GPU kernels' registers, shared memory, spills, occupancy and tensor-core instructions (ptxas, no GPU)", Run, """
        Lists every GPU kernel with the group size its op launches it with. With NVIDIA's ptxas (the file
        XCEPTION_PTXAS names, else ptxas on PATH) it adds what ptxas reports for the architecture: registers
        per thread, static shared memory per group, spilled bytes (stores + loads), and the occupancy that
        follows on one SM. Static analysis of the generated code: no GPU is needed or used.

        Occupancy = resident threads / 2,048, with resident groups per SM the least of: 65,536 registers
        (allocated per warp, registers x 32 rounded up to a multiple of 256), shared memory (228 KB on sm_90,
        164 KB on sm_80; per group rounded up to 128 bytes, plus 1 KB CUDA reserves per group), 2,048 threads
        and 32 groups. 'limit' names the one that binds.
        """)
    {
        Choice("arch", KernelPtx.Architectures.ToArray(), "sm_90 (H100, H200; the default) or sm_80 (A100)"),
        Value("ptx", "DIR", "also write each kernel's PTX to DIR/<Class>.<Kernel>.ptx"),
    };

    static int Run(Args a)
    {
        var arch = a.String("arch", "sm_90");
        if (KernelPtx.ParseArchitecture(arch) is null)
            throw new UsageException($"--arch must be {string.Join(" or ", KernelPtx.Architectures)}, got '{arch}'");
        var ptxDir = a.String("ptx");
        if (ptxDir is not null) OutputPaths.Folder("--ptx", ptxDir);

        var ptxas = Ptxas.Find(out var missing);
        var cuobjdump = ptxas is null ? null : Ptxas.FindCuobjdump(ptxas);
        var generated = KernelPtx.Generate(arch);
        var failures = new List<string>();
        var rows = new List<string[]>();
        foreach (var g in generated)
        {
            var k = g.Kernel;
            string note = k.GpuLaunched ? "" : "CPU accelerator only";
            if (g.Ptx is null)
            {
                failures.Add($"{k.Name}: {g.Error}");
                rows.Add(Row(k, ptxas is not null, "no PTX: see below"));
                continue;
            }
            if (ptxDir is not null) File.WriteAllText(Path.Combine(ptxDir, k.Name + ".ptx"), g.Ptx);
            if (ptxas is null) { rows.Add([k.Name, N(k.GroupSize), note]); continue; }
            try
            {
                var r = Ptxas.Assemble(ptxas, g.Ptx, arch);
                var o = Occupancy.For(arch, r.Registers, r.SharedBytes, k.GroupSize);
                string hmma = cuobjdump is null ? "-" : N(Ptxas.TensorCoreInstructions(Ptxas.Sass(ptxas, cuobjdump, g.Ptx, arch)));
                rows.Add([k.Name, N(k.GroupSize), N(r.Registers), N(r.SharedBytes), N(r.SpillBytes),
                    N(o.GroupsPerSm), (o.Fraction * 100).ToString("F0", CultureInfo.InvariantCulture) + "%", o.Limiter, hmma, note]);
            }
            catch (XceptionException e)
            {
                failures.Add($"{k.Name}: {e.Message}");
                rows.Add(Row(k, true, "ptxas failed: see below"));
            }
        }

        string sm = arch == "sm_90" ? "an H100/H200 SM" : "an A100 SM";
        if (ptxas is not null)
        {
            Console.WriteLine($"{generated.Count} kernels for {arch}, {Ptxas.Version(ptxas)} (static analysis; occupancy on {sm})");
            Print(["kernel", "group", "regs", "smem B", "spill B", "groups/SM", "occupancy", "limit", "HMMA", "note"], rows);
            if (cuobjdump is null) Console.WriteLine("(HMMA: tensor-core instructions, counted with cuobjdump, which is not beside this ptxas)");
        }
        else
        {
            Console.WriteLine($"{generated.Count} kernels");
            Print(["kernel", "group", "note"], rows);
            Console.WriteLine($"({missing}; for registers, shared memory, spills and occupancy set XCEPTION_PTXAS to a ptxas, e.g. from Debian's non-free nvidia-cuda-toolkit as .ci/run fetches it)");
        }
        if (ptxDir is not null) Console.WriteLine($"PTX written to {ptxDir}");
        if (failures.Count > 0)
            throw new XceptionException($"{failures.Count} of {generated.Count} kernels failed; first: {failures[0]}");
        return 0;
    }

    static string[] Row(KernelEntry k, bool withPtxas, string note) =>
        withPtxas ? [k.Name, N(k.GroupSize), "", "", "", "", "", "", "", note] : [k.Name, N(k.GroupSize), note];

    static string N(int v) => v.ToString("N0", CultureInfo.InvariantCulture);

    /// <summary>Left-aligned names, right-aligned numbers, columns two spaces apart; trailing blanks trimmed.</summary>
    static void Print(string[] header, List<string[]> rows)
    {
        var widths = header.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
        bool Left(int i) => header[i] is "kernel" or "limit" or "note";
        string Line(string[] cells) => string.Join("  ", cells.Select((c, i) => Left(i) ? c.PadRight(widths[i]) : c.PadLeft(widths[i]))).TrimEnd();
        Console.WriteLine(Line(header));
        foreach (var r in rows) Console.WriteLine(Line(r));
    }
}
