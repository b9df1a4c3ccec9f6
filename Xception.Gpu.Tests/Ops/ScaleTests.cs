using Xception.Gpu.Ops;
using Xunit;

namespace Xception.Gpu.Tests.Ops;

public class ScaleTests
{
    [Theory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void ScaleMatchesReferenceAndTheHostsBits(string backend)
    {
        var d = Backends.Get(backend);
        foreach (var (n, factor) in new[] { (1, 0.5f), (37, 3 / 7f), (1000, 4 / 9f), (5, -2f) })
        {
            var x = TestData.Uniform(n, 71, -3f, 3f);
            using var t = Tensor.From(d, x, n);
            Scale.On(d).InPlace(t, factor);
            var got = t.ToArray();
            Check.Close($"scale {n} by {factor}", got, Scale.Reference.Scaled(TestData.D(x), factor), 1e-6);
            // Data-parallel training relies on this: one float32 multiply, the same bits as on the host.
            for (int i = 0; i < n; i++) Assert.Equal(BitConverter.SingleToInt32Bits(x[i] * factor), BitConverter.SingleToInt32Bits(got[i]));
        }
        using var one = Tensor.Zeros(d, 3);
        var e = Assert.Throws<OpArgumentException>(() => Scale.On(d).InPlace(one, float.NaN));
        Assert.Equal("scale: the factor must be finite, got NaN", e.Message);
    }
}
