using Xception.Gpu.Ops;
using Xunit;

namespace Xception.Gpu.Tests.Ops;

public class GemmTests
{
    // M < K, sizes no multiple of 4 or 64, all four transpose combinations, beta 0 and 1, a long K that
    // takes the split-K path, and (on the CPU's SIMD GEMM) more rows than one cache block, K over several K blocks
    // and a last panel that is partly past N; N = 64, whole panels on every path, reads row-major B in place.
    [Theory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void MatchesReferenceOnOddShapes(string backend)
    {
        var d = Backends.Get(backend);
        foreach (var (m, n, k) in new[] { (5, 7, 19), (13, 70, 67), (3, 5, 1200), (66, 9, 130), (203, 75, 601), (29, 64, 300) })
            foreach (bool ta in new[] { false, true })
                foreach (bool tb in new[] { false, true })
                    foreach (float beta in new[] { 0f, 1f })
                    {
                        var a = TestData.Uniform(m * k, 1); var b = TestData.Uniform(k * n, 2); var c0 = TestData.Uniform(m * n, 3);
                        using var ta_ = Tensor.From(d, a, a.Length); using var tb_ = Tensor.From(d, b, b.Length);
                        using var tc = Tensor.From(d, c0, c0.Length);
                        Gemm.On(d).Run(ta_.View, ta, tb_.View, tb, m, n, k, beta, tc.View);
                        var want = Gemm.Reference(TestData.D(a), ta, TestData.D(b), tb, m, n, k, beta, TestData.D(c0));
                        Check.Close($"gemm M={m} N={n} K={k} transA={ta} transB={tb} beta={beta}", tc.ToArray(), want, Check.ForSum(k));
                    }
    }

    [Fact]
    public void RejectsBuffersTooSmallForTheSizes()
    {
        var d = Backends.Get(Backends.Cpu);
        using var a = Tensor.Zeros(d, 10); using var b = Tensor.Zeros(d, 10); using var c = Tensor.Zeros(d, 4);
        var e = Assert.Throws<ShapeException>(() => Gemm.On(d).Run(a.View, false, b.View, false, 2, 2, 6, 0, c.View));
        Assert.Contains("gemm", e.Message);
        Assert.Contains("K=6", e.Message);
    }
}
