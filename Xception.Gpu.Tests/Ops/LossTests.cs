using Xception.Gpu.Ops;
using Xunit;

namespace Xception.Gpu.Tests.Ops;

/// <summary>Softmax and sigmoid cross-entropy: loss values and logit gradients.</summary>
public class LossTests
{
    [Theory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void SoftmaxCrossEntropyMatchesReference(string backend)
    {
        var d = Backends.Get(backend);
        int n = 7, c = 13;
        var z = TestData.Uniform(n * c, 65, -4f, 4f);
        int[] labels = [0, 12, 5, 5, 3, 11, 7];
        using var tz = Tensor.From(d, z, n, c); using var tl = Tensor.Zeros<int>(d, n); using var tdz = Tensor.Zeros(d, n, c);
        using var probs = Tensor.Zeros(d, n, c);
        var op = Loss.On(d);
        foreach (float smoothing in new[] { 0f, 0.1f })
        {
            double loss = op.SoftmaxCrossEntropy(tz, labels, tl, tdz, smoothing);
            var (rl, rdz) = Loss.Reference.SoftmaxCrossEntropy(TestData.D(z), labels, c, smoothing);
            Assert.True(Math.Abs(loss - rl) <= Check.ForSum(c) * Math.Abs(rl), $"loss {loss} vs {rl} (smoothing {smoothing})");
            Check.Close($"softmax cross-entropy gradient (smoothing {smoothing})", tdz.ToArray(), rdz, Check.ForSum(c));
        }
        op.Softmax(tz, probs);
        var p = probs.ToArray();
        for (int r = 0; r < n; r++) Assert.InRange(p.Skip(r * c).Take(c).Sum(), 1 - 1e-5, 1 + 1e-5);
        var e = Assert.Throws<OpArgumentException>(() => op.SoftmaxCrossEntropy(tz, [0, 13, 1, 1, 1, 1, 1], tl, tdz));
        Assert.Equal("softmax_cross_entropy: label 13 at row 1 is outside [0, 13)", e.Message);
    }

    [Theory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void SigmoidCrossEntropyMatchesReference(string backend)
    {
        var d = Backends.Get(backend);
        int n = 5, c = 17;
        var z = TestData.Uniform(n * c, 66, -30f, 30f); // large logits: the stable form must not overflow
        var t = TestData.Uniform(n * c, 67).Select(v => v > 0.3f ? 1f : 0f).ToArray();
        using var tz = Tensor.From(d, z, n, c); using var tt = Tensor.From(d, t, n, c); using var tdz = Tensor.Zeros(d, n, c);
        double loss = Loss.On(d).SigmoidCrossEntropy(tz, tt, tdz);
        var (rl, rdz) = Loss.Reference.SigmoidCrossEntropy(TestData.D(z), TestData.D(t), n, c);
        Assert.True(Math.Abs(loss - rl) <= 1e-5 * Math.Abs(rl), $"loss {loss} vs {rl}");
        Check.Close("sigmoid cross-entropy gradient", tdz.ToArray(), rdz, 1e-6);
    }

    [Fact]
    public void ReferenceGradientsMatchCentralDifferences()
    {
        int n = 3, c = 5;
        var z = TestData.D(TestData.Uniform(n * c, 72, -3f, 3f));
        int[] labels = [4, 0, 2];
        Check.Gradient("softmax cross-entropy", v => Loss.Reference.SoftmaxCrossEntropy(v, labels, c, 0.1).Loss, z,
            Loss.Reference.SoftmaxCrossEntropy(z, labels, c, 0.1).Dlogits);
        var t = TestData.D(TestData.Uniform(n * c, 73, 0f, 1f));
        Check.Gradient("sigmoid cross-entropy", v => Loss.Reference.SigmoidCrossEntropy(v, t, n, c).Loss, z,
            Loss.Reference.SigmoidCrossEntropy(z, t, n, c).Dlogits);
    }
}
