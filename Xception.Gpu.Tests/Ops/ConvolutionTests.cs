using ConvShape = Xception.Gpu.Kernels.ConvShape;
using Xception.Gpu.Ops;
using Xunit;

namespace Xception.Gpu.Tests.Ops;

/// <summary>conv2d, depthwise and pointwise: forward, input gradient and weight gradient.</summary>
public class ConvolutionTests
{
    [Fact]
    public void SamePaddingIsTensorFlowsAsymmetricOne()
    {
        var g = AxisGeometry.Of("t", 74, 3, 2, Padding.Same);
        Assert.Equal((37, 0), (g.Out, g.PadBefore)); // total pad 1 goes after
        g = AxisGeometry.Of("t", 147, 3, 2, Padding.Same);
        Assert.Equal((74, 1), (g.Out, g.PadBefore));
        g = AxisGeometry.Of("t", 299, 3, 2, Padding.Valid);
        Assert.Equal((149, 0), (g.Out, g.PadBefore));
    }

    [Theory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void Conv2DMatchesReference(string backend)
    {
        var d = Backends.Get(backend);
        foreach (var c in WindowCases.All)
        {
            var x = Data.Uniform(c.N * c.H * c.W * c.C, 1); var w = Data.Uniform(c.K * c.K * c.C * c.O, 2);
            using var tx = Tensor.From(d, x, c.N, c.H, c.W, c.C); using var tw = Tensor.From(d, w, c.K, c.K, c.C, c.O);
            var s = Conv2D.Geometry(tx.Shape, tw.Shape, c.Stride, c.Padding);
            using var ty = Tensor.Zeros(d, s.OutputShape());
            var op = Conv2D.On(d);
            op.Forward(tx, tw, c.Stride, c.Padding, ty);
            Check.Close($"conv2d forward {c}", ty.ToArray(), Conv2D.Reference.Forward(Data.D(x), Data.D(w), s), Check.ForSum(c.K * c.K * c.C));

            var dy = Data.Uniform(s.OutputLength, 3);
            using var tdy = Tensor.From(d, dy, s.OutputShape());
            using var tdx = Tensor.Zeros(d, tx.Shape.ToArray()); using var tdw = Tensor.Zeros(d, tw.Shape.ToArray());
            op.BackwardInput(tdy, tw, c.Stride, c.Padding, tdx);
            op.BackwardWeight(tx, tdy, c.Stride, c.Padding, tdw);
            var (rdx, rdw) = Conv2D.Reference.Backward(Data.D(x), Data.D(w), Data.D(dy), s);
            Check.Close($"conv2d input gradient {c}", tdx.ToArray(), rdx, Check.ForSum(c.K * c.K * c.O));
            Check.Close($"conv2d weight gradient {c}", tdw.ToArray(), rdw, Check.ForSum(s.OutputPixels));
        }
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
            var x = Data.Uniform(n * h * w * c, 41); var wt = Data.Uniform(9 * (c / g) * o, 42);
            using var tx = Tensor.From(d, x, n, h, w, c); using var tw = Tensor.From(d, wt, 3, 3, c / g, o);
            var s = Conv2D.Geometry(tx.Shape, tw.Shape, stride, Padding.Same);
            Assert.Equal(g, s.Groups);
            string name = $"{c}->{o} groups {g} s{stride}";
            using var ty = Tensor.Zeros(d, s.OutputShape());
            var op = Conv2D.On(d);
            op.Forward(tx, tw, stride, Padding.Same, ty);
            Check.Close($"grouped conv forward {name}", ty.ToArray(), Conv2D.Reference.Forward(Data.D(x), Data.D(wt), s), Check.ForSum(9 * c / g));
            var dy = Data.Uniform(s.OutputLength, 43);
            using var tdy = Tensor.From(d, dy, s.OutputShape());
            using var tdx = Tensor.Zeros(d, n, h, w, c); using var tdw = Tensor.Zeros(d, 3, 3, c / g, o);
            op.BackwardInput(tdy, tw, stride, Padding.Same, tdx);
            op.BackwardWeight(tx, tdy, stride, Padding.Same, tdw);
            var (rdx, rdw) = Conv2D.Reference.Backward(Data.D(x), Data.D(wt), Data.D(dy), s);
            Check.Close($"grouped conv input gradient {name}", tdx.ToArray(), rdx, Check.ForSum(9 * o / g));
            Check.Close($"grouped conv weight gradient {name}", tdw.ToArray(), rdw, Check.ForSum(s.OutputPixels));
            if (stride == 1 && backend == Backends.Cpu)
            {
                // Reference gradients by central differences, on a crop small enough for the double loops.
                var sx = Data.D(Data.Uniform(1 * 5 * 4 * c, 44));
                var ss = Conv2D.Geometry(new Shape(1, 5, 4, c), tw.Shape, 1, Padding.Same);
                var r = Data.D(Data.Uniform(ss.OutputLength, 45));
                var (gdx, gdw) = Conv2D.Reference.Backward(sx, Data.D(wt), r, ss);
                Check.Gradient($"grouped conv dx {name}", v => Check.Dot(r, Conv2D.Reference.Forward(v, Data.D(wt), ss)), sx, gdx);
                Check.Gradient($"grouped conv dw {name}", v => Check.Dot(r, Conv2D.Reference.Forward(sx, v, ss)), Data.D(wt), gdw);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void DepthwiseMatchesReference(string backend)
    {
        var d = Backends.Get(backend);
        foreach (var c in WindowCases.All)
        {
            var x = Data.Uniform(c.N * c.H * c.W * c.C, 4); var w = Data.Uniform(c.K * c.K * c.C, 5);
            using var tx = Tensor.From(d, x, c.N, c.H, c.W, c.C); using var tw = Tensor.From(d, w, c.K, c.K, c.C);
            var s = Depthwise.Geometry(tx.Shape, tw.Shape, c.Stride, c.Padding);
            using var ty = Tensor.Zeros(d, s.OutputShape());
            var op = Depthwise.On(d);
            op.Forward(tx, tw, c.Stride, c.Padding, ty);
            Check.Close($"depthwise forward {c}", ty.ToArray(), Depthwise.Reference.Forward(Data.D(x), Data.D(w), s), Check.ForSum(c.K * c.K));

            var dy = Data.Uniform(s.OutputLength, 6);
            using var tdy = Tensor.From(d, dy, s.OutputShape());
            using var tdx = Tensor.Zeros(d, tx.Shape.ToArray()); using var tdw = Tensor.Zeros(d, tw.Shape.ToArray());
            op.BackwardInput(tdy, tw, c.Stride, c.Padding, tdx);
            op.BackwardWeight(tx, tdy, c.Stride, c.Padding, tdw);
            var (rdx, rdw) = Depthwise.Reference.Backward(Data.D(x), Data.D(w), Data.D(dy), s);
            Check.Close($"depthwise input gradient {c}", tdx.ToArray(), rdx, Check.ForSum(c.K * c.K));
            Check.Close($"depthwise weight gradient {c}", tdw.ToArray(), rdw, Check.ForSum(s.OutputPixels));
        }
    }

    [Theory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void PointwiseMatchesReference(string backend)
    {
        var d = Backends.Get(backend);
        // Channel counts off every tile, M < K in the weight-gradient GEMM (few pixels, many channels), and
        // stride 2 on odd and even sizes (the shortcut: 147 -> 74 is odd -> ceil).
        foreach (var (n, h, w, ci, co, stride) in new[] { (2, 13, 11, 5, 7, 1), (2, 13, 11, 5, 7, 2), (1, 3, 2, 70, 9, 1), (1, 12, 10, 6, 66, 2), (1, 15, 15, 4, 3, 2) })
        {
            var x = Data.Uniform(n * h * w * ci, 7); var wt = Data.Uniform(ci * co, 8);
            using var tx = Tensor.From(d, x, n, h, w, ci); using var tw = Tensor.From(d, wt, ci, co);
            var s = Pointwise.Geometry(tx.Shape, tw.Shape, stride);
            string name = $"{n}x{h}x{w}x{ci}->{co} s{stride}";
            using var ty = Tensor.Zeros(d, s.OutputShape());
            var op = Pointwise.On(d);
            op.Forward(tx, tw, stride, ty);
            Check.Close($"pointwise forward {name}", ty.ToArray(), Pointwise.Reference.Forward(Data.D(x), Data.D(wt), s), Check.ForSum(ci));

            var dy = Data.Uniform(s.OutputLength, 9);
            using var tdy = Tensor.From(d, dy, s.OutputShape());
            using var tdx = Tensor.From(d, Data.Uniform(x.Length, 99), tx.Shape.ToArray()); // stale values must be overwritten
            using var tdw = Tensor.Zeros(d, ci, co);
            op.BackwardInput(tdy, tw, stride, tdx);
            op.BackwardWeight(tx, tdy, stride, tdw);
            var (rdx, rdw) = Pointwise.Reference.Backward(Data.D(x), Data.D(wt), Data.D(dy), s);
            Check.Close($"pointwise input gradient {name}", tdx.ToArray(), rdx, Check.ForSum(co));
            Check.Close($"pointwise weight gradient {name}", tdw.ToArray(), rdw, Check.ForSum(s.OutputPixels));
        }
    }

    [Fact]
    public void ReferenceGradientsMatchCentralDifferences()
    {
        foreach (var c in WindowCases.Small)
        {
            var x = Data.D(Data.Uniform(c.N * c.H * c.W * c.C, 11));
            var cw = Data.D(Data.Uniform(c.K * c.K * c.C * c.O, 12));
            var s = Window.Of("conv2d", new Shape(c.N, c.H, c.W, c.C), c.K, c.Stride, c.Padding, c.O);
            var r = Data.D(Data.Uniform(s.OutputLength, 13));
            var (dx, dw) = Conv2D.Reference.Backward(x, cw, r, s);
            Check.Gradient($"conv2d dx {c}", v => Check.Dot(r, Conv2D.Reference.Forward(v, cw, s)), x, dx);
            Check.Gradient($"conv2d dw {c}", v => Check.Dot(r, Conv2D.Reference.Forward(x, v, s)), cw, dw);

            var dwt = Data.D(Data.Uniform(c.K * c.K * c.C, 14));
            var ds = Window.Of("depthwise", new Shape(c.N, c.H, c.W, c.C), c.K, c.Stride, c.Padding, c.C);
            var rd = Data.D(Data.Uniform(ds.OutputLength, 15));
            var (ddx, ddw) = Depthwise.Reference.Backward(x, dwt, rd, ds);
            Check.Gradient($"depthwise dx {c}", v => Check.Dot(rd, Depthwise.Reference.Forward(v, dwt, ds)), x, ddx);
            Check.Gradient($"depthwise dw {c}", v => Check.Dot(rd, Depthwise.Reference.Forward(x, v, ds)), dwt, ddw);

            var pwt = Data.D(Data.Uniform(c.C * c.O, 16));
            var ps = Window.Of("pointwise", new Shape(c.N, c.H, c.W, c.C), 1, c.Stride, Padding.Same, c.O);
            var rp = Data.D(Data.Uniform(ps.OutputLength, 17));
            var (pdx, pdw) = Pointwise.Reference.Backward(x, pwt, rp, ps);
            Check.Gradient($"pointwise dx {c}", v => Check.Dot(rp, Pointwise.Reference.Forward(v, pwt, ps)), x, pdx);
            Check.Gradient($"pointwise dw {c}", v => Check.Dot(rp, Pointwise.Reference.Forward(x, v, ps)), pwt, pdw);
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

        using var dw = Tensor.Zeros(d, 3, 3, 5);
        using var bad = Tensor.Zeros(d, 1, 13, 11, 5);
        e = Assert.Throws<ShapeException>(() => Depthwise.On(d).Forward(x, dw, 2, Padding.Same, bad));
        Assert.Equal("depthwise: output must have shape (1, 7, 6, 5), got (1, 13, 11, 5)", e.Message);

        using var small = Tensor.Zeros(d, 1, 2, 2, 5);
        using var ok = Tensor.Zeros(d, 1, 1, 1, 5);
        e = Assert.Throws<ShapeException>(() => Depthwise.On(d).Forward(small, dw, 1, Padding.Valid, ok));
        Assert.Contains("'valid' padding needs an input of at least 3 pixels, got 2", e.Message);
    }
}
