using Xception.Gpu.Ops;
using Xunit;

namespace Xception.Gpu.Tests.Ops;

/// <summary>conv2d (regular and grouped): forward, input gradient and weight gradient.</summary>
public class Conv2DTests
{
    [Theory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void Conv2DMatchesReference(string backend)
    {
        var d = Backends.Get(backend);
        foreach (var c in WindowCases.All) CheckCase(d, c, "");
    }

    // The CPU accelerator runs convolutions as im2col + GEMM in chunks of output rows; a chunk of one or two
    // rows makes many chunks (and chunks that end inside an image) out of the small cases, whose input-gradient
    // gather must then take each pixel's windows from several chunks.
    [Fact]
    public void Conv2DInChunksOfRowsMatchesReference()
    {
        foreach (long rows in new long[] { 1, 2 })
        {
            using var d = Gpu.Runtime.Device.Open("cpu");
            foreach (var c in WindowCases.All)
            {
                Conv2D.On(d).ColumnChunkFloats = rows * Window.Of("conv2d", new Shape(c.N, c.H, c.W, c.C), c.K, c.Stride, c.Padding, c.O).OW * c.K * c.K * c.C;
                CheckCase(d, c, $", {rows}-row chunks");
            }
        }
    }

    /// <summary>Forward, input gradient and weight gradient of one case against the float64 reference.</summary>
    static void CheckCase(Gpu.Runtime.Device d, WindowCases.Case c, string note)
    {
        var x = TestData.Uniform(c.N * c.H * c.W * c.C, 1); var w = TestData.Uniform(c.K * c.K * c.C * c.O, 2);
        using var tx = Tensor.From(d, x, c.N, c.H, c.W, c.C); using var tw = Tensor.From(d, w, c.K, c.K, c.C, c.O);
        var s = Conv2D.Geometry(tx.Shape, tw.Shape, c.Stride, c.Padding);
        using var ty = Tensor.Zeros(d, s.OutputShape());
        var op = Conv2D.On(d);
        op.Forward(tx, tw, c.Stride, c.Padding, ty);
        Check.Close($"conv2d forward{note} {c}", ty.ToArray(), Conv2D.Reference.Forward(TestData.D(x), TestData.D(w), s), Check.ForSum(c.K * c.K * c.C));

        var dy = TestData.Uniform(s.OutputLength, 3);
        using var tdy = Tensor.From(d, dy, s.OutputShape());
        using var tdx = Tensor.Zeros(d, tx.Shape.ToArray()); using var tdw = Tensor.Zeros(d, tw.Shape.ToArray());
        op.BackwardInput(tdy, tw, c.Stride, c.Padding, tdx);
        op.BackwardWeight(tx, tdy, c.Stride, c.Padding, tdw);
        var (rdx, rdw) = Conv2D.Reference.Backward(TestData.D(x), TestData.D(w), TestData.D(dy), s);
        Check.Close($"conv2d input gradient{note} {c}", tdx.ToArray(), rdx, Check.ForSum(c.K * c.K * c.O));
        Check.Close($"conv2d weight gradient{note} {c}", tdw.ToArray(), rdw, Check.ForSum(s.OutputPixels));
    }

    // Grouped convolution (the paper's segments between regular and depthwise): groups whose output count
    // is no multiple of the kernel's 4-channel blocks, and a depthwise-like case with multiplier 3.
    [Theory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void GroupedConv2DMatchesReference(string backend)
    {
        var d = Backends.Get(backend);
        foreach (var (c, o, g, stride) in new[] { (6, 9, 3, 1), (8, 8, 2, 2), (4, 12, 4, 1), (10, 10, 5, 2) })
        {
            int n = 2, h = 13, w = 11;
            var x = TestData.Uniform(n * h * w * c, 41); var wt = TestData.Uniform(9 * (c / g) * o, 42);
            using var tx = Tensor.From(d, x, n, h, w, c); using var tw = Tensor.From(d, wt, 3, 3, c / g, o);
            var s = Conv2D.Geometry(tx.Shape, tw.Shape, stride, Padding.Same);
            Assert.Equal(g, s.Groups);
            string name = $"{c}->{o} groups {g} s{stride}";
            using var ty = Tensor.Zeros(d, s.OutputShape());
            var op = Conv2D.On(d);
            op.Forward(tx, tw, stride, Padding.Same, ty);
            Check.Close($"grouped conv forward {name}", ty.ToArray(), Conv2D.Reference.Forward(TestData.D(x), TestData.D(wt), s), Check.ForSum(9 * c / g));
            var dy = TestData.Uniform(s.OutputLength, 43);
            using var tdy = Tensor.From(d, dy, s.OutputShape());
            using var tdx = Tensor.Zeros(d, n, h, w, c); using var tdw = Tensor.Zeros(d, 3, 3, c / g, o);
            op.BackwardInput(tdy, tw, stride, Padding.Same, tdx);
            op.BackwardWeight(tx, tdy, stride, Padding.Same, tdw);
            var (rdx, rdw) = Conv2D.Reference.Backward(TestData.D(x), TestData.D(wt), TestData.D(dy), s);
            Check.Close($"grouped conv input gradient {name}", tdx.ToArray(), rdx, Check.ForSum(9 * o / g));
            Check.Close($"grouped conv weight gradient {name}", tdw.ToArray(), rdw, Check.ForSum(s.OutputPixels));
            if (stride == 1 && backend == Backends.Cpu)
            {
                // Reference gradients by central differences, on a crop small enough for the double loops.
                var sx = TestData.D(TestData.Uniform(1 * 5 * 4 * c, 44));
                var ss = Conv2D.Geometry(new Shape(1, 5, 4, c), tw.Shape, 1, Padding.Same);
                var r = TestData.D(TestData.Uniform(ss.OutputLength, 45));
                var (gdx, gdw) = Conv2D.Reference.Backward(sx, TestData.D(wt), r, ss);
                Check.Gradient($"grouped conv dx {name}", v => Check.Dot(r, Conv2D.Reference.Forward(v, TestData.D(wt), ss)), sx, gdx);
                Check.Gradient($"grouped conv dw {name}", v => Check.Dot(r, Conv2D.Reference.Forward(sx, v, ss)), TestData.D(wt), gdw);
            }
        }
    }

    // The CPU accelerator's grouped convolutions as batched GEMMs at the segments study's widths: groups of 16 and 32
    // channels whose weight columns are whole SIMD panels read in place and partial ones packed, strided and
    // 'valid' windows, and chunks of one and three output rows (chunks that end inside an image).
    [Fact]
    public void GroupedConv2DInChunksOfRowsMatchesReference()
    {
        using var d = Gpu.Runtime.Device.Open("cpu");
        foreach (var (c, o, g, stride, padding) in new[] { (64, 64, 4, 1, Padding.Same), (64, 96, 2, 2, Padding.Same), (48, 40, 8, 1, Padding.Valid) })
            foreach (long rows in new long[] { 1, 3, 1 << 20 })
            {
                int n = 2, h = 9, w = 7;
                var x = TestData.Uniform(n * h * w * c, 51); var wt = TestData.Uniform(9 * (c / g) * o, 52);
                using var tx = Tensor.From(d, x, n, h, w, c); using var tw = Tensor.From(d, wt, 3, 3, c / g, o);
                var s = Conv2D.Geometry(tx.Shape, tw.Shape, stride, padding);
                var op = Conv2D.On(d);
                op.ColumnChunkFloats = rows * s.OW * 9 * c;
                string name = $"{c}->{o} groups {g} s{stride} {padding}, {rows}-row chunks";
                using var ty = Tensor.Zeros(d, s.OutputShape());
                op.Forward(tx, tw, stride, padding, ty);
                Check.Close($"grouped conv forward {name}", ty.ToArray(), Conv2D.Reference.Forward(TestData.D(x), TestData.D(wt), s), Check.ForSum(9 * c / g));
                var dy = TestData.Uniform(s.OutputLength, 53);
                using var tdy = Tensor.From(d, dy, s.OutputShape());
                using var tdx = Tensor.Zeros(d, n, h, w, c); using var tdw = Tensor.Zeros(d, 3, 3, c / g, o);
                op.BackwardInput(tdy, tw, stride, padding, tdx);
                op.BackwardWeight(tx, tdy, stride, padding, tdw);
                var (rdx, rdw) = Conv2D.Reference.Backward(TestData.D(x), TestData.D(wt), TestData.D(dy), s);
                Check.Close($"grouped conv input gradient {name}", tdx.ToArray(), rdx, Check.ForSum(9 * o / g));
                Check.Close($"grouped conv weight gradient {name}", tdw.ToArray(), rdw, Check.ForSum(s.OutputPixels));
            }
    }

    [Fact]
    public void ReferenceGradientsMatchCentralDifferences()
    {
        foreach (var c in WindowCases.Small)
        {
            var x = TestData.D(TestData.Uniform(c.N * c.H * c.W * c.C, 11));
            var cw = TestData.D(TestData.Uniform(c.K * c.K * c.C * c.O, 12));
            var s = Window.Of("conv2d", new Shape(c.N, c.H, c.W, c.C), c.K, c.Stride, c.Padding, c.O);
            var r = TestData.D(TestData.Uniform(s.OutputLength, 13));
            var (dx, dw) = Conv2D.Reference.Backward(x, cw, r, s);
            Check.Gradient($"conv2d dx {c}", v => Check.Dot(r, Conv2D.Reference.Forward(v, cw, s)), x, dx);
            Check.Gradient($"conv2d dw {c}", v => Check.Dot(r, Conv2D.Reference.Forward(x, v, s)), cw, dw);
        }
    }

    [Fact]
    public void ShapeErrorsNameTheOpAndBothShapes()
    {
        var d = Backends.Get(Backends.Cpu);
        using var x = Tensor.Zeros(d, 1, 13, 11, 5);
        using var w = Tensor.Zeros(d, 3, 3, 4, 8);
        using var y = Tensor.Zeros(d, 1, 13, 11, 8);
        var e = Assert.Throws<ShapeException>(() => Conv2D.On(d).Forward(x, w, 1, Padding.Same, y));
        Assert.Equal("conv2d: input (1, 13, 11, 5) must be NHWC with a multiple of 4 channels (groups) that also divides the 8 outputs of weights (3, 3, 4, 8)", e.Message);
    }
}
