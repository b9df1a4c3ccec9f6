using Xception.Gpu.Ops;
using Xunit;

namespace Xception.Gpu.Tests.Ops;

/// <summary>Dropout: mask, scale, and the same mask recomputed by backward.</summary>
public class DropoutTests
{
    [Theory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void DropoutMasksScalesAndRecomputesTheSameMask(string backend)
    {
        var d = Backends.Get(backend);
        int n = 20011;
        var x = TestData.Uniform(n, 55, 0.5f, 1.5f); var dy = TestData.Uniform(n, 56);
        using var tx = Tensor.From(d, x, n); using var ty = Tensor.Zeros(d, n);
        using var tdy = Tensor.From(d, dy, n); using var tdx = Tensor.Zeros(d, n);
        var op = Dropout.On(d);
        const float rate = 0.3f; const uint seed = 1234;
        op.Forward(tx, rate, seed, ty);
        op.Backward(tdy, rate, seed, tdx);
        Check.Close("dropout forward", ty.ToArray(), Dropout.Reference.Apply(TestData.D(x), rate, seed), 1e-6);
        Check.Close("dropout backward", tdx.ToArray(), Dropout.Reference.Apply(TestData.D(dy), rate, seed), 1e-6);
        // The dropped fraction is binomial: sd = sqrt(0.3 * 0.7 / 20011) = 0.0032; allow 5 sd.
        double dropped = ty.ToArray().Count(v => v == 0f) / (double)n;
        Assert.InRange(dropped, rate - 0.016, rate + 0.016);
        // A different seed gives a different mask.
        op.Forward(tx, rate, seed + 1, ty);
        Assert.NotEqual(Dropout.Reference.Apply(TestData.D(x), rate, seed).Select(v => v == 0), ty.ToArray().Select(v => v == 0f));
        Assert.Throws<OpArgumentException>(() => op.Forward(tx, 1f, seed, ty));
    }

    [Fact]
    public void ReferenceGradientsMatchCentralDifferences()
    {
        var x = TestData.D(TestData.Distinct(61, 57));
        var r = TestData.D(TestData.Uniform(61, 58));
        var mask = Dropout.Reference.Mask(61, 0.4f, 9);
        Check.Gradient("dropout", v => Check.Dot(r, Dropout.Reference.Apply(v, 0.4f, 9)), x, r.Select((g, i) => g * mask[i]).ToArray());
    }
}
