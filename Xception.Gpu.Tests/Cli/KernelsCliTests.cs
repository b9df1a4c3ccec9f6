using Xception.Gpu.Diagnostics;
using Xception.Gpu.Tests.IO;
using Xunit;

namespace Xception.Gpu.Tests.Cli;

/// <summary>
/// `xception kernels`, in-process. Runs with or without ptxas: the table has the ptxas columns only when there
/// is one, and the PTX files are written either way (generating PTX needs no GPU and no CUDA installation).
/// </summary>
public class KernelsCliTests
{
    [Fact]
    public void WritesEveryKernelsPtxAndPrintsTheTable()
    {
        using var dir = new TempDir();
        var target = dir["ptx"]; // not there yet: the command makes it
        var (code, output) = CliRun.Run("kernels", "--arch", "sm_80", "--ptx", target);
        Assert.True(code == 0, output);
        foreach (var k in KernelCatalog.All)
        {
            var file = Path.Combine(target, k.Name + ".ptx");
            Assert.True(File.Exists(file), $"{file} missing");
            Assert.Contains(".entry", File.ReadAllText(file));
            Assert.Contains(k.Name + " ", output);
        }
        Assert.Equal(KernelCatalog.All.Count, Directory.GetFiles(target).Length);
        if (Ptxas.Find(out _) is not null)
        {
            Assert.Contains("regs", output);
            Assert.Contains("sm_80", output);
            Assert.Matches(@"GemmKernels\.Tiled\s+256\s+\d+\s+6,400\s+0\s", output);
        }
        else
        {
            Assert.DoesNotContain("regs", output);
            Assert.Contains("XCEPTION_PTXAS", output);
        }
    }

    [Theory]
    [InlineData("sm_70")]
    [InlineData("SM_90")]
    [InlineData("")]
    public void AnUnknownArchitectureIsAOneLineUsageError(string arch)
    {
        var (code, output) = CliRun.Run("kernels", "--arch", arch);
        Assert.Equal(2, code);
        Assert.Single(output.Trim().Split('\n'));
        Assert.Contains("--arch must be sm_80 or sm_90", output);
    }

    [Fact]
    public void TheCommandIsListedInTheUsage()
    {
        var (code, output) = CliRun.Run("--help");
        Assert.Equal(0, code);
        Assert.Contains("kernels", output);
        Assert.Contains("--ptx <DIR>", CliRun.Run("kernels", "--help").Out);
    }
}
