using ILGPU;
using ILGPU.Runtime;
using Xception.Gpu.Kernels;
using Xception.Gpu.Ops;
using Xunit;

namespace Xception.Gpu.Tests.Ops;

/// <summary>
/// TF32 and bf16: the roundings against a float64 model of the formats, bit for bit; the emulated warp MMA against a
/// scalar loop of the same arithmetic, bit for bit; and the GEMM at each precision on every backend (the tensor-core
/// kernel where the device has tensor cores, the rounded operands multiplied in fp32 elsewhere).
/// </summary>
public class PrecisionTests
{
    /// <summary>
    /// <paramref name="x"/> rounded to <paramref name="mantissa"/> stored bits in float64 arithmetic: the spacing of the
    /// values at x's exponent (at least fp32's smallest normal exponent, so subnormals keep the same absolute spacing).
    /// </summary>
    static float Model(float x, int mantissa, MidpointRounding mode)
    {
        if (!float.IsFinite(x) || x == 0) return x;
        int e = Math.Max(Math.ILogB((double)x), -126);
        double ulp = Math.ScaleB(1.0, e - mantissa);
        return (float)(Math.Round(x / ulp, mode) * ulp); // exact in double; past fp32's range it becomes infinity
    }

    static IEnumerable<float> Samples()
    {
        var rng = new Random(7);
        var bits = new byte[4];
        for (int i = 0; i < 200_000; i++)
        {
            rng.NextBytes(bits);
            yield return BitConverter.ToSingle(bits);
        }
        // Ties and their neighbours at 1 for both formats, the largest finite value, subnormals, signed zeros.
        foreach (float f in new[] { 1f + MathF.Pow(2, -11), 1f + MathF.Pow(2, -11) - MathF.Pow(2, -23), 1f + 3 * MathF.Pow(2, -11),
                     1f + MathF.Pow(2, -8), 1f + 3 * MathF.Pow(2, -8), 1f + MathF.Pow(2, -8) + MathF.Pow(2, -23),
                     float.MaxValue, float.Epsilon, 3 * float.Epsilon, -0f, 0f, float.PositiveInfinity, float.NegativeInfinity })
        {
            yield return f;
            yield return -f;
        }
    }

    [Fact]
    public void RoundingMatchesTheFormatsBitForBit()
    {
        int checkedValues = 0;
        foreach (var x in Samples())
        {
            if (float.IsNaN(x))
            {
                Assert.True(float.IsNaN(Rounding.Tf32(x)) && float.IsNaN(Rounding.Bf16(x)), $"NaN {BitConverter.SingleToUInt32Bits(x):x8} stays NaN");
                continue;
            }
            // TF32: 10 stored mantissa bits, ties away from zero (cvt.rna); bf16: 7, ties to even (cvt.rn).
            Assert.Equal(BitConverter.SingleToUInt32Bits(Model(x, 10, MidpointRounding.AwayFromZero)), BitConverter.SingleToUInt32Bits(Rounding.Tf32(x)));
            Assert.Equal(BitConverter.SingleToUInt32Bits(Model(x, 7, MidpointRounding.ToEven)), BitConverter.SingleToUInt32Bits(Rounding.Bf16(x)));
            checkedValues++;
        }
        Assert.True(checkedValues > 190_000);
        Assert.Equal(1f + MathF.Pow(2, -10), Rounding.Tf32(1f + MathF.Pow(2, -11)));   // a tie goes away from zero
        Assert.Equal(1f, Rounding.Bf16(1f + MathF.Pow(2, -8)));                         // a tie goes to the even neighbour
        Assert.Equal(float.PositiveInfinity, Rounding.Tf32(float.MaxValue));
    }

    [Theory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void TheRoundingKernelGivesTheScalarsBits(string backend)
    {
        var d = Backends.Get(backend);
        var x = Samples().Where(float.IsFinite).Take(5000).ToArray();
        var round = d.Accelerator.LoadStreamKernel<ArrayView<float>, int, int, ArrayView<float>>(RoundKernels.Round);
        foreach (int format in new[] { RoundKernels.Tf32, RoundKernels.Bf16 })
        {
            using var src = Tensor.From(d, x, x.Length);
            using var dst = Tensor.Zeros(d, x.Length);
            round(d.GridFor(x.Length), src.View, x.Length, format, dst.View);
            var want = x.Select(v => format == RoundKernels.Bf16 ? Rounding.Bf16(v) : Rounding.Tf32(v)).ToArray();
            Check.Equal($"round format {format} on {backend}", dst.ToArray().Select(BitConverter.SingleToUInt32Bits).ToArray(), want.Select(BitConverter.SingleToUInt32Bits).ToArray());
        }
    }

    /// <summary>
    /// One warp's MMA through the fragment layouts of the PTX ISA against D = C + sum over k of A[i][k] * B[k][j], added
    /// in k order in fp32: bit for bit where the warp is emulated (a layout slip would move whole products), within
    /// fp32 rounding of the sum on CUDA's tensor cores, whose order of addition is their own.
    /// </summary>
    [Theory]
    [InlineData(Backends.GpuShapedCpu, RoundKernels.Tf32)]
    [InlineData(Backends.GpuShapedCpu, RoundKernels.Bf16)]
    [InlineData(Backends.Cuda, RoundKernels.Tf32)]
    [InlineData(Backends.Cuda, RoundKernels.Bf16)]
    public void TheWarpMmaFollowsThePtxFragmentLayouts(string backend, int format)
    {
        var d = Backends.Get(backend);
        int kk = format == RoundKernels.Bf16 ? 16 : 8;
        Func<float, float> r = format == RoundKernels.Bf16 ? Rounding.Bf16 : Rounding.Tf32;
        // Distinct magnitudes per position, so that a value read from the wrong lane or register changes the result.
        var a = TestData.Uniform(16 * kk, 11).Select((v, i) => r(v * (1 + i % 7))).ToArray();
        var b = TestData.Uniform(kk * 8, 12).Select((v, i) => r(v * (1 + i % 5))).ToArray();
        var c = TestData.Uniform(16 * 8, 13);
        var want = new float[16 * 8];
        for (int i = 0; i < 16; i++)
            for (int j = 0; j < 8; j++)
            {
                float s = c[i * 8 + j];
                for (int k = 0; k < kk; k++) s += a[i * kk + k] * b[k * 8 + j];
                want[i * 8 + j] = s;
            }
        var tile = d.Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, ArrayView<float>>(MmaKernels.Tile);
        using var ta = Tensor.From(d, a, a.Length); using var tb = Tensor.From(d, b, b.Length); using var tc = Tensor.From(d, c, c.Length);
        using var td = Tensor.Zeros(d, 16 * 8);
        tile(new KernelConfig(1, 32), ta.View, tb.View, tc.View, format, td.View);
        var got = td.ToArray();
        if (backend == Backends.Cuda) Check.Close($"mma format {format} on {backend}", got, TestData.D(want), Check.ForSum(kk));
        else Check.Equal($"mma format {format} on {backend}", got.Select(BitConverter.SingleToUInt32Bits).ToArray(), want.Select(BitConverter.SingleToUInt32Bits).ToArray());
    }

    /// <summary>
    /// The GEMM at TF32 and bf16, odd shapes, both transposes, beta and the split-K path. Two bounds: against the
    /// float64 product of the rounded operands, the fp32 accumulation's (<see cref="Check.ForSum"/>); against the
    /// float64 product of the operands as given, the format's: each product carries at most 2u relative error
    /// (u = 2^-11 for TF32, 2^-8 for bf16), so the result is off by at most 2u sum|a||b|, which for these uniform
    /// operands (no cancellation to speak of in the norm) is within 4u of the result's norm.
    /// The shapes: one tile and edges, several tiles with partial edges, a K long enough for split-K (256 and more, one
    /// output tile), each transpose. The GPU-shaped CPU emulates every warp shuffle with a barrier, about a second per
    /// 64 x 64 x 16 step, so there the cases are fewer: every shape once, and split-K at TF32 only (the format changes
    /// the fragments, not the slicing).
    /// </summary>
    static IEnumerable<(int M, int N, int K, bool TransA, bool TransB)> Cases(string backend, Precision precision)
    {
        if (backend != Backends.GpuShapedCpu)
        {
            foreach (var (m, n, k) in new[] { (5, 7, 19), (70, 75, 33), (29, 64, 300) })
                foreach (bool ta in new[] { false, true })
                    foreach (bool tb in new[] { false, true })
                        yield return (m, n, k, ta, tb);
            yield break;
        }
        yield return (5, 7, 19, false, false);
        yield return (5, 7, 19, true, true);
        yield return (70, 75, 19, false, true);
        if (precision == Precision.Tf32) yield return (20, 9, 256, true, false);
    }

    [Theory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void TheGemmAtEachPrecisionIsWithinItsFormatsBound(string backend)
    {
        var d = Backends.Get(backend);
        var was = d.Precision;
        try
        {
            foreach (var precision in new[] { Precision.Tf32, Precision.Bf16 })
            {
                d.Precision = precision;
                Func<float, float> r = precision == Precision.Bf16 ? Rounding.Bf16 : Rounding.Tf32;
                double u = precision == Precision.Bf16 ? Math.Pow(2, -8) : Math.Pow(2, -11);
                foreach (var (m, n, k, ta, tb) in Cases(backend, precision))
                        {
                            float beta = ta ? 1f : 0f;
                            var a = TestData.Uniform(m * k, 1); var b = TestData.Uniform(k * n, 2); var c0 = TestData.Uniform(m * n, 3);
                            using var ta_ = Tensor.From(d, a, a.Length); using var tb_ = Tensor.From(d, b, b.Length);
                            using var tc = Tensor.From(d, c0, c0.Length);
                            Gemm.On(d).Run(ta_.View, ta, tb_.View, tb, m, n, k, beta, tc.View);
                            var got = tc.ToArray();
                            string what = $"gemm {precision} on {backend} M={m} N={n} K={k} transA={ta} transB={tb} beta={beta}";
                            var rounded = Gemm.Reference(TestData.D(a.Select(r).ToArray()), ta, TestData.D(b.Select(r).ToArray()), tb, m, n, k, beta, TestData.D(c0));
                            Check.Close(what + " vs the rounded operands", got, rounded, Check.ForSum(k));
                            var exact = Gemm.Reference(TestData.D(a), ta, TestData.D(b), tb, m, n, k, beta, TestData.D(c0));
                            Check.Close(what + " vs the operands as given", got, exact, 4 * u);
                        }
            }
        }
        finally
        {
            d.Precision = was;
        }
    }

    /// <summary>
    /// The regular convolution at TF32 and bf16, forward and both gradients: implicit GEMM on the tensor cores (the
    /// GPU-shaped CPU emulates them), im2col + the rounding GEMM on the CPU, rounded operands into the fp32 kernels on
    /// OpenCL, and for grouped convolutions everywhere. Each result is a float32 sum over the rounded operands, so
    /// against them it keeps fp32 accumulation's bound, and against the operands as given a relative error of a few
    /// units of the format (each product carries at most two roundings of u). The GPU-shaped CPU takes about a second
    /// per tile step (see <see cref="Cases"/>), so there the shapes are two small ones per format, stride 2 and 1, whose
    /// products still span several K steps and tiles; at TF32 one has 272 output pixels, so that the weight gradient's
    /// reduction is split into K slices (asserted).
    /// </summary>
    [Theory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void TheConvolutionAtEachPrecisionIsWithinItsFormatsBound(string backend)
    {
        var d = Backends.Get(backend);
        var was = d.Precision;
        try
        {
            foreach (var precision in new[] { Precision.Tf32, Precision.Bf16 })
            {
                d.Precision = precision;
                var cases = backend != Backends.GpuShapedCpu
                    ? WindowCases.All.Select(c => (c, Groups: 1)).Append((new WindowCases.Case(2, 9, 7, 6, 9, 3, 2, Padding.Same), 3)).ToArray()
                    : precision == Precision.Bf16
                        ? [(new WindowCases.Case(1, 7, 6, 5, 7, 3, 2, Padding.Same), 1), (new WindowCases.Case(1, 9, 8, 3, 4, 3, 1, Padding.Valid), 1)]
                        // 272 output pixels: the weight gradient's reduction is split into K slices (at TF32 only: the
                        // format changes the fragments, not the slicing).
                        : new[] { (new WindowCases.Case(1, 7, 6, 5, 7, 3, 2, Padding.Same), 1), (new WindowCases.Case(1, 17, 16, 2, 3, 3, 1, Padding.Same), 1) };
                Func<float, float> r = precision == Precision.Bf16 ? Rounding.Bf16 : Rounding.Tf32;
                double u = precision == Precision.Bf16 ? Math.Pow(2, -8) : Math.Pow(2, -11);
                foreach (var (c, groups) in cases)
                {
                    var x = TestData.Uniform(c.N * c.H * c.W * c.C, 1); var w = TestData.Uniform(c.K * c.K * c.C / groups * c.O, 2);
                    using var tx = Tensor.From(d, x, c.N, c.H, c.W, c.C); using var tw = Tensor.From(d, w, c.K, c.K, c.C / groups, c.O);
                    var s = Conv2D.Geometry(tx.Shape, tw.Shape, c.Stride, c.Padding);
                    var dy = TestData.Uniform(s.OutputLength, 3);
                    using var ty = Tensor.Zeros(d, s.OutputShape()); using var tdy = Tensor.From(d, dy, s.OutputShape());
                    using var tdx = Tensor.Zeros(d, tx.Shape.ToArray()); using var tdw = Tensor.Zeros(d, tw.Shape.ToArray());
                    var op = Conv2D.On(d);
                    Assert.Equal(groups == 1 && backend is Backends.GpuShapedCpu or Backends.Cuda, op.OnTensorCores(s));
                    if (backend == Backends.GpuShapedCpu && s.OutputPixels > 256)
                        Assert.True(Gemm.On(d).SplitK(1, 9 * c.C, c.O, s.OutputPixels).Slices > 1, "the weight gradient is not split");
                    op.Forward(tx, tw, c.Stride, c.Padding, ty);
                    op.BackwardInput(tdy, tw, c.Stride, c.Padding, tdx);
                    op.BackwardWeight(tx, tdy, c.Stride, c.Padding, tdw);
                    string what = $"conv2d {precision} on {backend} {c} groups {groups}";

                    var (rx, rw, rdy) = (TestData.D(x.Select(r).ToArray()), TestData.D(w.Select(r).ToArray()), TestData.D(dy.Select(r).ToArray()));
                    var (rdx, rdw) = Conv2D.Reference.Backward(rx, rw, rdy, s);
                    Check.Close(what + " forward vs the rounded operands", ty.ToArray(), Conv2D.Reference.Forward(rx, rw, s), Check.ForSum(c.K * c.K * c.C / groups));
                    Check.Close(what + " input gradient vs the rounded operands", tdx.ToArray(), rdx, Check.ForSum(c.K * c.K * c.O / groups));
                    Check.Close(what + " weight gradient vs the rounded operands", tdw.ToArray(), rdw, Check.ForSum(s.OutputPixels));

                    var (edx, edw) = Conv2D.Reference.Backward(TestData.D(x), TestData.D(w), TestData.D(dy), s);
                    Check.Close(what + " forward vs the operands as given", ty.ToArray(), Conv2D.Reference.Forward(TestData.D(x), TestData.D(w), s), 4 * u);
                    Check.Close(what + " input gradient vs the operands as given", tdx.ToArray(), edx, 4 * u);
                    Check.Close(what + " weight gradient vs the operands as given", tdw.ToArray(), edw, 4 * u);
                }
            }
        }
        finally
        {
            d.Precision = was;
        }
    }
}
