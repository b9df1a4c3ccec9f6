using Xception.Gpu.Ops;
using Xunit;

namespace Xception.Gpu.Tests.Ops;

/// <summary>The residual add and the gradient accumulation of a fork.</summary>
public class ResidualTests
{
    [Theory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void ResidualAddAndAccumulate(string backend)
    {
        var d = Backends.Get(backend);
        var a = TestData.Uniform(3 * 7 * 5 * 9, 53); var b = TestData.Uniform(a.Length, 54);
        using var ta = Tensor.From(d, a, 3, 7, 5, 9); using var tb = Tensor.From(d, b, 3, 7, 5, 9);
        using var ty = Tensor.Zeros(d, 3, 7, 5, 9);
        var op = Residual.On(d);
        op.Forward(ta, tb, ty);
        var want = a.Select((v, i) => (double)v + b[i]).ToArray();
        Check.Close("add forward", ty.ToArray(), want, Check.ForSum(2));
        op.Accumulate(tb, ta); // the backward of add hands dy to both branches; a fork sums them
        Check.Close("gradient accumulate", ta.ToArray(), want, Check.ForSum(2));
        using var wrong = Tensor.Zeros(d, 3, 7, 5, 8);
        var e = Assert.Throws<ShapeException>(() => op.Forward(ta, wrong, ty));
        Assert.Equal("add: second input (3, 7, 5, 8) must have the shape of first input (3, 7, 5, 9)", e.Message);
    }
}
