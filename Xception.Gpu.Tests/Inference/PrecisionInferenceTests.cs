using Xception.Gpu.Architecture;
using Xception.Gpu.Inference;
using Xunit;

namespace Xception.Gpu.Tests.Inference;

/// <summary>
/// The whole model at TF32 and bf16 against fp32: the same classes, logits within the formats' bounds. Xception's
/// 74 matrix products in sequence each add about 2u of relative error (u = 2^-11 for TF32, 2^-8 for bf16), and
/// batch norm keeps the activations' scale, so the errors add up as a random walk would: about 2u x sqrt(74) = 17u.
/// The bounds are 40u on the logits' relative L2 error, with room for the classifier's cancellation.
/// </summary>
public class PrecisionInferenceTests
{
    [Fact]
    public void LogitsAtTf32AndBf16AreWithinTheFormatsBoundsOfFp32()
    {
        var config = new XceptionConfig { ImageSize = 71, Classes = 10 };
        using var model = XceptionModel.Create(config, "cpu", seed: 3);
        const int n = 4;
        var x = TestData.Uniform(n * 71 * 71 * 3, 5);
        var fp32 = model.Logits(x, n);
        foreach (var (precision, u) in new[] { (Precision.Tf32, Math.Pow(2, -11)), (Precision.Bf16, Math.Pow(2, -8)) })
        {
            model.Precision = precision;
            var got = model.Logits(x, n);
            double num = 0, den = 0;
            for (int i = 0; i < got.Length; i++) { num += (got[i] - fp32[i]) * (got[i] - fp32[i]); den += fp32[i] * (double)fp32[i]; }
            double rel = Math.Sqrt(num / den);
            TestContext.Current.SendDiagnosticMessage($"{precision}: logits' relative error against fp32 {rel:E2} ({rel / u:F1} u)");
            Assert.True(rel > 0, $"{precision} gave the fp32 logits bit for bit: the setting did nothing");
            Assert.True(rel < 40 * u, $"{precision}: relative error {rel:E2} exceeds 40u = {40 * u:E2}");
            for (int i = 0; i < n; i++)
                Assert.Equal(ArgMax(fp32.AsSpan(i * 10, 10)), ArgMax(got.AsSpan(i * 10, 10)));
        }
        model.Precision = Precision.Fp32;
        Assert.Equal(fp32, model.Logits(x, n));
    }

    static int ArgMax(ReadOnlySpan<float> row)
    {
        int best = 0;
        for (int i = 1; i < row.Length; i++) if (row[i] > row[best]) best = i;
        return best;
    }
}
