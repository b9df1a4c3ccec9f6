using Xception.Gpu.Ops;
using Xunit;

namespace Xception.Gpu.Tests.Ops;

/// <summary>ReLU, ELU, the residual add and dropout: elementwise ops.</summary>
public class ActivationTests
{
    [Theory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void ActivationsMatchReference(string backend)
    {
        var d = Backends.Get(backend);
        var x = Data.Distinct(2 * 13 * 11 * 5, 51);
        var dy = Data.Uniform(x.Length, 52);
        foreach (var kind in new[] { ActivationKind.Relu, ActivationKind.Elu })
        {
            using var tx = Tensor.From(d, x, 2, 13, 11, 5);
            using var ty = Tensor.Zeros(d, 2, 13, 11, 5);
            using var tdy = Tensor.From(d, dy, 2, 13, 11, 5);
            using var tdx = Tensor.Zeros(d, 2, 13, 11, 5);
            var op = Activation.On(d);
            op.Forward(kind, tx, ty);
            // exp in float32 is correctly rounded to a few ulp: 1e-6 covers it.
            Check.Close($"{kind} forward", ty.ToArray(), Activation.Reference.Forward(kind, Data.D(x)), 1e-6);
            op.Backward(kind, tdy, ty, tdx);
            Check.Close($"{kind} backward", tdx.ToArray(), Activation.Reference.Backward(kind, Data.D(x), Data.D(dy)), 1e-6);
            // In place, as the layer graph uses it.
            op.Forward(kind, tx, tx);
            Check.Close($"{kind} forward in place", tx.ToArray(), Activation.Reference.Forward(kind, Data.D(x)), 1e-6);
        }
    }

    [Theory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void ResidualAddAndAccumulate(string backend)
    {
        var d = Backends.Get(backend);
        var a = Data.Uniform(3 * 7 * 5 * 9, 53); var b = Data.Uniform(a.Length, 54);
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

    [Theory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void DropoutMasksScalesAndRecomputesTheSameMask(string backend)
    {
        var d = Backends.Get(backend);
        int n = 20011;
        var x = Data.Uniform(n, 55, 0.5f, 1.5f); var dy = Data.Uniform(n, 56);
        using var tx = Tensor.From(d, x, n); using var ty = Tensor.Zeros(d, n);
        using var tdy = Tensor.From(d, dy, n); using var tdx = Tensor.Zeros(d, n);
        var op = Dropout.On(d);
        const float rate = 0.3f; const uint seed = 1234;
        op.Forward(tx, rate, seed, ty);
        op.Backward(tdy, rate, seed, tdx);
        Check.Close("dropout forward", ty.ToArray(), Dropout.Reference.Apply(Data.D(x), rate, seed), 1e-6);
        Check.Close("dropout backward", tdx.ToArray(), Dropout.Reference.Apply(Data.D(dy), rate, seed), 1e-6);
        // The dropped fraction is binomial: sd = sqrt(0.3 * 0.7 / 20011) = 0.0032; allow 5 sd.
        double dropped = ty.ToArray().Count(v => v == 0f) / (double)n;
        Assert.InRange(dropped, rate - 0.016, rate + 0.016);
        // A different seed gives a different mask.
        op.Forward(tx, rate, seed + 1, ty);
        Assert.NotEqual(Dropout.Reference.Apply(Data.D(x), rate, seed).Select(v => v == 0), ty.ToArray().Select(v => v == 0f));
        Assert.Throws<OpArgumentException>(() => op.Forward(tx, 1f, seed, ty));
    }

    [Fact]
    public void ReferenceGradientsMatchCentralDifferences()
    {
        var x = Data.D(Data.Distinct(61, 57));
        var r = Data.D(Data.Uniform(61, 58));
        foreach (var kind in new[] { ActivationKind.Relu, ActivationKind.Elu })
            Check.Gradient($"{kind}", v => Check.Dot(r, Activation.Reference.Forward(kind, v)), x, Activation.Reference.Backward(kind, x, r));
        var mask = Dropout.Reference.Mask(61, 0.4f, 9);
        Check.Gradient("dropout", v => Check.Dot(r, Dropout.Reference.Apply(v, 0.4f, 9)), x, r.Select((g, i) => g * mask[i]).ToArray());
    }
}
