using Xception.Gpu.Ops;
using Xunit;

namespace Xception.Gpu.Tests.Ops;

/// <summary>ReLU and ELU: forward, backward and in place.</summary>
public class ActivationTests
{
    [Theory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void ActivationsMatchReference(string backend)
    {
        var d = Backends.Get(backend);
        var x = TestData.Distinct(2 * 13 * 11 * 5, 51);
        var dy = TestData.Uniform(x.Length, 52);
        foreach (var kind in new[] { ActivationKind.Relu, ActivationKind.Elu })
        {
            using var tx = Tensor.From(d, x, 2, 13, 11, 5);
            using var ty = Tensor.Zeros(d, 2, 13, 11, 5);
            using var tdy = Tensor.From(d, dy, 2, 13, 11, 5);
            using var tdx = Tensor.Zeros(d, 2, 13, 11, 5);
            var op = Activation.On(d);
            op.Forward(kind, tx, ty);
            // exp in float32 is correctly rounded to a few ulp: 1e-6 covers it.
            Check.Close($"{kind} forward", ty.ToArray(), Activation.Reference.Forward(kind, TestData.D(x)), 1e-6);
            op.Backward(kind, tdy, ty, tdx);
            Check.Close($"{kind} backward", tdx.ToArray(), Activation.Reference.Backward(kind, TestData.D(x), TestData.D(dy)), 1e-6);
            // In place, as the layer graph uses it.
            op.Forward(kind, tx, tx);
            Check.Close($"{kind} forward in place", tx.ToArray(), Activation.Reference.Forward(kind, TestData.D(x)), 1e-6);
        }
    }

    [Fact]
    public void ReferenceGradientsMatchCentralDifferences()
    {
        var x = TestData.D(TestData.Distinct(61, 57));
        var r = TestData.D(TestData.Uniform(61, 58));
        foreach (var kind in new[] { ActivationKind.Relu, ActivationKind.Elu })
            Check.Gradient($"{kind}", v => Check.Dot(r, Activation.Reference.Forward(kind, v)), x, Activation.Reference.Backward(kind, x, r));
    }
}
