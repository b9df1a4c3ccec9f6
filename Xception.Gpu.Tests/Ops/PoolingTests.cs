using Xception.Gpu.Ops;
using Xunit;

namespace Xception.Gpu.Tests.Ops;

public class PoolingTests
{
    [Theory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void MaxPoolMatchesReference(string backend)
    {
        var d = Backends.Get(backend);
        var cases = WindowCases.All.Append(new WindowCases.Case(1, 9, 8, 3, 3, 2, 2, Padding.Valid));
        foreach (var c in cases)
        {
            var x = TestData.Distinct(c.N * c.H * c.W * c.C, 21);
            using var tx = Tensor.From(d, x, c.N, c.H, c.W, c.C);
            var s = MaxPool.Geometry(tx.Shape, c.K, c.Stride, c.Padding);
            using var ty = Tensor.Zeros(d, s.OutputShape());
            using var am = Tensor.Zeros<int>(d, s.OutputShape());
            var op = MaxPool.On(d);
            op.Forward(tx, c.K, c.Stride, c.Padding, ty, am);
            var (ry, ram) = MaxPool.Reference.Forward(TestData.D(x), s);
            Check.Close($"maxpool forward {c}", ty.ToArray(), ry, 0); // a max is exact
            Check.Equal($"maxpool argmax {c}", am.ToArray(), ram);

            using var ty2 = Tensor.Zeros(d, s.OutputShape());
            op.Forward(tx, c.K, c.Stride, c.Padding, ty2, null);
            Check.Close($"maxpool inference forward {c}", ty2.ToArray(), ry, 0);

            var dy = TestData.Uniform(s.OutputLength, 22);
            using var tdy = Tensor.From(d, dy, s.OutputShape());
            using var tdx = Tensor.Zeros(d, tx.Shape.ToArray());
            op.Backward(tdy, am, c.K, c.Stride, c.Padding, tdx);
            // Each input receives at most K*K window gradients (overlapping windows of stride < K).
            Check.Close($"maxpool backward {c}", tdx.ToArray(), MaxPool.Reference.Backward(TestData.D(x), TestData.D(dy), s), Check.ForSum(c.K * c.K));
        }
    }

    [Fact]
    public void MaxPoolSamePaddingNeverPicksThePad()
    {
        // All-negative input: a zero pad that wins the max would show up as 0 at the right/bottom border.
        var d = Backends.Get(Backends.Cpu);
        var x = Enumerable.Range(0, 74 * 74).Select(i => -1f - i % 7).ToArray();
        using var tx = Tensor.From(d, x, 1, 74, 74, 1);
        using var ty = Tensor.Zeros(d, 1, 37, 37, 1);
        MaxPool.On(d).Forward(tx, 3, 2, Padding.Same, ty, null);
        Assert.All(ty.ToArray(), v => Assert.True(v < 0, $"pooled {v}"));
    }

    [Theory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void GlobalAvgPoolMatchesReference(string backend)
    {
        var d = Backends.Get(backend);
        int n = 3, h = 13, w = 11, c = 7;
        var x = TestData.Uniform(n * h * w * c, 23);
        using var tx = Tensor.From(d, x, n, h, w, c);
        using var ty = Tensor.Zeros(d, n, c);
        var op = GlobalAvgPool.On(d);
        op.Forward(tx, ty);
        Check.Close("global average pool forward", ty.ToArray(), GlobalAvgPool.Reference.Forward(TestData.D(x), n, h * w, c), Check.ForSum(h * w));
        var dy = TestData.Uniform(n * c, 24);
        using var tdy = Tensor.From(d, dy, n, c);
        using var tdx = Tensor.Zeros(d, n, h, w, c);
        op.Backward(tdy, tdx);
        Check.Close("global average pool backward", tdx.ToArray(), GlobalAvgPool.Reference.Backward(TestData.D(dy), n, h * w, c), Check.ForSum(1));
    }

    [Fact]
    public void ReferenceGradientsMatchCentralDifferences()
    {
        foreach (var c in WindowCases.Small)
        {
            var x = TestData.D(TestData.Distinct(c.N * c.H * c.W * c.C, 25));
            var s = MaxPool.Geometry(new Shape(c.N, c.H, c.W, c.C), c.K, c.Stride, c.Padding);
            var r = TestData.D(TestData.Uniform(s.OutputLength, 26));
            Check.Gradient($"maxpool {c}", v => Check.Dot(r, MaxPool.Reference.Forward(v, s).Y), x, MaxPool.Reference.Backward(x, r, s));
            var rg = TestData.D(TestData.Uniform(c.N * c.C, 27));
            int px = c.H * c.W;
            Check.Gradient($"global average pool {c}", v => Check.Dot(rg, GlobalAvgPool.Reference.Forward(v, c.N, px, c.C)), x,
                GlobalAvgPool.Reference.Backward(rg, c.N, px, c.C));
        }
    }
}
