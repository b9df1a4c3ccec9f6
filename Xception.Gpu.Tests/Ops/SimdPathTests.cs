using Xception.Gpu.Kernels.Cpu;
using Xunit;

namespace Xception.Gpu.Tests.Ops;

/// <summary>
/// The CPU micro-kernels' instruction-set path follows what the process may use: <c>DOTNET_EnableAVX512=0</c>
/// leaves AVX2 at most, <c>DOTNET_EnableAVX2=0</c> the portable Vector128 path. CI runs the op tests once per path
/// and sets XCEPTION_EXPECT_SIMD to the path each run means to test, so a run that silently took another path fails.
/// </summary>
public class SimdPathTests
{
    [Fact]
    public void PathFollowsTheProcessInstructionSets()
    {
        if (Environment.GetEnvironmentVariable("DOTNET_EnableAVX2") == "0")
            Assert.Equal(SimdPath.Portable, Simd.Path);
        else if (Environment.GetEnvironmentVariable("DOTNET_EnableAVX512") == "0")
            Assert.NotEqual(SimdPath.Avx512, Simd.Path);
        var expect = Environment.GetEnvironmentVariable("XCEPTION_EXPECT_SIMD");
        if (!string.IsNullOrEmpty(expect))
            Assert.Equal(expect, Simd.Path.ToString(), ignoreCase: true);
        Assert.Equal(Simd.Path switch { SimdPath.Avx512 => 16, SimdPath.Avx2 => 8, _ => 4 }, Simd.Width);
        Assert.Equal(2 * Simd.Width, GemmCpuKernels.PanelWidth);
    }
}
