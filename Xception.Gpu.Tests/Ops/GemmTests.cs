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

    // The CPU accelerator's batched GEMM as a grouped convolution uses it: each product's C a band of columns of a
    // wider matrix (row stride over N, untouched columns between bands), row-major and transposed operands, 1 to 5
    // products (odd counts leave units unevenly over two workers), N below, at and over the panel width, beta 0 and 1.
    [Fact]
    public void BatchedMatchesReferenceProductByProduct()
    {
        var d = Backends.Get(Backends.Cpu);
        int nr = Xception.Gpu.Kernels.Cpu.GemmCpuKernels.PanelWidth;
        foreach (var (m, n, k, batches) in new[] { (7, 5, 19, 3), (50, nr, 37, 2), (13, nr + 3, 300, 5), (61, 2 * nr, 9, 1), (4, 3, 700, 4) })
            foreach (bool ta in new[] { false, true })
                foreach (bool tb in new[] { false, true })
                    foreach (float beta in new[] { 0f, 1f })
                    {
                        int ldc = n * batches + 2;  // bands of n columns side by side, two columns left alone
                        var a = TestData.Uniform(batches * m * k, 21); var b = TestData.Uniform(batches * k * n, 22);
                        var c0 = TestData.Uniform(m * ldc, 23);
                        // A's products one after another; B's interleaved as a grouped convolution's weights are:
                        // product g is columns g * n onwards of a [K, batches * n] matrix (rows when transposed).
                        int aRow = ta ? 1 : k, aCol = ta ? m : 1;
                        int bRow = tb ? 1 : batches * n, bCol = tb ? k : 1;
                        long bBatch = tb ? (long)n * k : n;
                        using var tA = Tensor.From(d, a, a.Length); using var tB = Tensor.From(d, b, b.Length);
                        using var tC = Tensor.From(d, c0, c0.Length);
                        Gemm.On(d).RunBatches(tA.View, aRow, aCol, (long)m * k, tB.View, bRow, bCol, bBatch, m, n, k, beta, tC.View, ldc, n, batches);
                        var got = tC.ToArray();
                        for (int g = 0; g < batches; g++)
                        {
                            var ag = TestData.D(a.AsSpan(g * m * k, m * k).ToArray());
                            var bg = new double[k * n];
                            for (int i = 0; i < k; i++)
                                for (int j = 0; j < n; j++)
                                    bg[tb ? j * k + i : i * n + j] = b[g * bBatch + (tb ? j * k + i : (long)i * bRow + j)];
                            var cg = new double[m * n];
                            var gotG = new float[m * n];
                            for (int i = 0; i < m; i++)
                                for (int j = 0; j < n; j++) { cg[i * n + j] = c0[i * ldc + g * n + j]; gotG[i * n + j] = got[i * ldc + g * n + j]; }
                            var want = Gemm.Reference(ag, ta, bg, tb, m, n, k, beta, cg);
                            Check.Close($"batched gemm product {g} of {batches}, M={m} N={n} K={k} transA={ta} transB={tb} beta={beta}", gotG, want, Check.ForSum(k));
                        }
                        for (int i = 0; i < m; i++)
                            for (int j = batches * n; j < ldc; j++)
                                Assert.True(got[i * ldc + j] == c0[i * ldc + j], $"batched gemm wrote outside its bands at row {i}, column {j}");
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
