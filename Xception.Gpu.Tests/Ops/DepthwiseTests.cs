using Xception.Gpu.Ops;
using Xunit;

namespace Xception.Gpu.Tests.Ops;

/// <summary>depthwise: forward, input gradient and weight gradient.</summary>
public class DepthwiseTests
{
    [Theory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void DepthwiseMatchesReference(string backend)
    {
        var d = Backends.Get(backend);
        foreach (var c in WindowCases.All)
        {
            var x = TestData.Uniform(c.N * c.H * c.W * c.C, 4); var w = TestData.Uniform(c.K * c.K * c.C, 5);
            using var tx = Tensor.From(d, x, c.N, c.H, c.W, c.C); using var tw = Tensor.From(d, w, c.K, c.K, c.C);
            var s = Depthwise.Geometry(tx.Shape, tw.Shape, c.Stride, c.Padding);
            using var ty = Tensor.Zeros(d, s.OutputShape());
            var op = Depthwise.On(d);
            op.Forward(tx, tw, c.Stride, c.Padding, ty);
            Check.Close($"depthwise forward {c}", ty.ToArray(), Depthwise.Reference.Forward(TestData.D(x), TestData.D(w), s), Check.ForSum(c.K * c.K));

            var dy = TestData.Uniform(s.OutputLength, 6);
            using var tdy = Tensor.From(d, dy, s.OutputShape());
            using var tdx = Tensor.Zeros(d, tx.Shape.ToArray()); using var tdw = Tensor.Zeros(d, tw.Shape.ToArray());
            op.BackwardInput(tdy, tw, c.Stride, c.Padding, tdx);
            op.BackwardWeight(tx, tdy, c.Stride, c.Padding, tdw);
            var (rdx, rdw) = Depthwise.Reference.Backward(TestData.D(x), TestData.D(w), TestData.D(dy), s);
            Check.Close($"depthwise input gradient {c}", tdx.ToArray(), rdx, Check.ForSum(c.K * c.K));
            Check.Close($"depthwise weight gradient {c}", tdw.ToArray(), rdw, Check.ForSum(s.OutputPixels));
        }
    }

    [Fact]
    public void ReferenceGradientsMatchCentralDifferences()
    {
        foreach (var c in WindowCases.Small)
        {
            var x = TestData.D(TestData.Uniform(c.N * c.H * c.W * c.C, 11));
            var dwt = TestData.D(TestData.Uniform(c.K * c.K * c.C, 14));
            var ds = Window.Of("depthwise", new Shape(c.N, c.H, c.W, c.C), c.K, c.Stride, c.Padding, c.C);
            var rd = TestData.D(TestData.Uniform(ds.OutputLength, 15));
            var (ddx, ddw) = Depthwise.Reference.Backward(x, dwt, rd, ds);
            Check.Gradient($"depthwise dx {c}", v => Check.Dot(rd, Depthwise.Reference.Forward(v, dwt, ds)), x, ddx);
            Check.Gradient($"depthwise dw {c}", v => Check.Dot(rd, Depthwise.Reference.Forward(x, v, ds)), dwt, ddw);
        }
    }

    [Fact]
    public void ShapeErrorsNameTheOpAndBothShapes()
    {
        var d = Backends.Get(Backends.Cpu);
        using var x = Tensor.Zeros(d, 1, 13, 11, 5);
        using var dw = Tensor.Zeros(d, 3, 3, 5);
        using var bad = Tensor.Zeros(d, 1, 13, 11, 5);
        var e = Assert.Throws<ShapeException>(() => Depthwise.On(d).Forward(x, dw, 2, Padding.Same, bad));
        Assert.Equal("depthwise: output must have shape (1, 7, 6, 5), got (1, 13, 11, 5)", e.Message);

        using var small = Tensor.Zeros(d, 1, 2, 2, 5);
        using var ok = Tensor.Zeros(d, 1, 1, 1, 5);
        e = Assert.Throws<ShapeException>(() => Depthwise.On(d).Forward(small, dw, 1, Padding.Valid, ok));
        Assert.Contains("'valid' padding needs an input of at least 3 pixels, got 2", e.Message);
    }
}
