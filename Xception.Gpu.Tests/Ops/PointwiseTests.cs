using Xception.Gpu.Ops;
using Xunit;

namespace Xception.Gpu.Tests.Ops;

/// <summary>pointwise (1x1, stride 1 and 2): forward, input gradient and weight gradient.</summary>
public class PointwiseTests
{
    [Theory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void PointwiseMatchesReference(string backend)
    {
        var d = Backends.Get(backend);
        // Channel counts off every tile, M < K in the weight-gradient GEMM (few pixels, many channels), and
        // stride 2 on odd and even sizes (the shortcut: 147 -> 74 is odd -> ceil).
        foreach (var (n, h, w, ci, co, stride) in new[] { (2, 13, 11, 5, 7, 1), (2, 13, 11, 5, 7, 2), (1, 3, 2, 70, 9, 1), (1, 12, 10, 6, 66, 2), (1, 15, 15, 4, 3, 2) })
        {
            var x = TestData.Uniform(n * h * w * ci, 7); var wt = TestData.Uniform(ci * co, 8);
            using var tx = Tensor.From(d, x, n, h, w, ci); using var tw = Tensor.From(d, wt, ci, co);
            var s = Pointwise.Geometry(tx.Shape, tw.Shape, stride);
            string name = $"{n}x{h}x{w}x{ci}->{co} s{stride}";
            using var ty = Tensor.Zeros(d, s.OutputShape());
            var op = Pointwise.On(d);
            op.Forward(tx, tw, stride, ty);
            Check.Close($"pointwise forward {name}", ty.ToArray(), Pointwise.Reference.Forward(TestData.D(x), TestData.D(wt), s), Check.ForSum(ci));

            var dy = TestData.Uniform(s.OutputLength, 9);
            using var tdy = Tensor.From(d, dy, s.OutputShape());
            using var tdx = Tensor.From(d, TestData.Uniform(x.Length, 99), tx.Shape.ToArray()); // stale values must be overwritten
            using var tdw = Tensor.Zeros(d, ci, co);
            op.BackwardInput(tdy, tw, stride, tdx);
            op.BackwardWeight(tx, tdy, stride, tdw);
            var (rdx, rdw) = Pointwise.Reference.Backward(TestData.D(x), TestData.D(wt), TestData.D(dy), s);
            Check.Close($"pointwise input gradient {name}", tdx.ToArray(), rdx, Check.ForSum(co));
            Check.Close($"pointwise weight gradient {name}", tdw.ToArray(), rdw, Check.ForSum(s.OutputPixels));
        }
    }

    [Fact]
    public void ReferenceGradientsMatchCentralDifferences()
    {
        foreach (var c in WindowCases.Small)
        {
            var x = TestData.D(TestData.Uniform(c.N * c.H * c.W * c.C, 11));
            var pwt = TestData.D(TestData.Uniform(c.C * c.O, 16));
            var ps = Window.Of("pointwise", new Shape(c.N, c.H, c.W, c.C), 1, c.Stride, Padding.Same, c.O);
            var rp = TestData.D(TestData.Uniform(ps.OutputLength, 17));
            var (pdx, pdw) = Pointwise.Reference.Backward(x, pwt, rp, ps);
            Check.Gradient($"pointwise dx {c}", v => Check.Dot(rp, Pointwise.Reference.Forward(v, pwt, ps)), x, pdx);
            Check.Gradient($"pointwise dw {c}", v => Check.Dot(rp, Pointwise.Reference.Forward(x, v, ps)), pwt, pdw);
        }
    }
}
