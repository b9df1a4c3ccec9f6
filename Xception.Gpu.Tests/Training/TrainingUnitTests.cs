using Xception.Gpu.Training;
using Xunit;

namespace Xception.Gpu.Tests.Training;

public class TrainingUnitTests
{
    [Fact]
    public void MetricSumsKeepTheCheckpointsFlatOrder()
    {
        // Checkpoints store the running metrics as this array: its order is a file format.
        var s = new MetricSums(8, 12.5, 3, 6, 1.25, 2);
        Assert.Equal(new double[] { 8, 12.5, 3, 6, 1.25, 2 }, s.ToArray());
        Assert.Equal(s, MetricSums.FromArray(s.ToArray()));
        Assert.Equal(new MetricSums(16, 25, 6, 12, 2.5, 4), s + s);
        Assert.Equal(12.5 / 8, s.MeanLoss);
        Assert.True(double.IsNaN(default(MetricSums).MeanLoss));
    }

    [Fact]
    public void AMissingCheckpointIsNamedInTheLibrarysTerms()
    {
        using var tmp = new Xception.Gpu.Tests.IO.TempDir();
        Directory.CreateDirectory(tmp["empty"]);
        var e = Assert.Throws<CheckpointNotFoundException>(() => Checkpoints.Resolve(tmp["empty"]));
        Assert.Equal($"checkpoint folder '{tmp["empty"]}' has no checkpoint (ckpt-*.safetensors)", e.Message);
        e = Assert.Throws<CheckpointNotFoundException>(() => Checkpoints.Resolve(tmp["missing"]));
        Assert.Equal($"'{tmp["missing"]}' is neither a checkpoint file nor a folder of checkpoints", e.Message);
    }

    [Fact]
    public void SchedulesFollowThePapersRecipes()
    {
        var imagenet = new LearningRateSchedule { BaseRate = 0.045, Decay = DecayKind.ExponentialEpochs, Rate = 0.94, Every = 2 };
        Assert.Equal(0.045, imagenet.At(0, 0, 0), 12);
        Assert.Equal(0.045, imagenet.At(100, 0, 1.99), 12);
        Assert.Equal(0.045 * 0.94, imagenet.At(100, 0, 2.0), 12);
        Assert.Equal(0.045 * 0.94 * 0.94 * 0.94, imagenet.At(100, 0, 7.5), 12);
        var jft = new LearningRateSchedule { BaseRate = 0.001, Decay = DecayKind.ExponentialSamples, Rate = 0.9, Every = 3_000_000 };
        Assert.Equal(0.001, jft.At(0, 2_999_999, 0), 12);
        Assert.Equal(0.001 * 0.9 * 0.9, jft.At(0, 6_000_000, 0), 12);
        var cosine = new LearningRateSchedule { BaseRate = 1, Decay = DecayKind.Cosine, TotalSteps = 100, WarmupSteps = 10 };
        Assert.Equal(0.1 * 0.5 * (1 + Math.Cos(0)), cosine.At(0, 0, 0), 12);     // first warm-up step
        Assert.Equal(0.5, cosine.At(50, 0, 0), 12);
        Assert.Equal(0, cosine.At(100, 0, 0), 12);
        var step = new LearningRateSchedule { BaseRate = 1, Decay = DecayKind.Step, Rate = 0.1, Boundaries = [3, 6] };
        Assert.Equal(new[] { 1, 1, 0.1, 0.01 }, new[] { 0.0, 2.9, 3, 6 }.Select(e => Math.Round(step.At(0, 0, e), 12)));
    }

    [Fact]
    public void TopKCountsTiesByIndex()
    {
        float[] logits = [0.1f, 0.9f, 0.5f, 0.3f, /* row 2 */ 1, 1, 1, 1];
        Assert.Equal(1, Metrics.TopKCorrect(logits, [1, 3], 4, 1));
        Assert.Equal(1, Metrics.TopKCorrect(logits, [2, 3], 4, 2)); // row 2: label 3 ties with three earlier classes
        Assert.Equal(2, Metrics.TopKCorrect(logits, [3, 3], 4, 4));
    }

    [Fact]
    public void AveragePrecisionAtNByHand()
    {
        // Scores rank classes 2, 0, 3, 1. True labels {0, 1}: hits at ranks 2 and 4, AP = (1/2 + 2/4) / 2 = 0.5.
        float[] scores = [0.8f, 0.1f, 0.9f, 0.3f];
        float[] targets = [1, 1, 0, 0];
        var (sum, count) = Metrics.AveragePrecisionAtN(scores, targets, 4, 100);
        Assert.Equal(1, count);
        Assert.Equal(0.5, sum, 12);
        // Cut at N = 2: only the hit at rank 2 counts, divided by min(2, 2) labels: 0.25.
        Assert.Equal(0.25, Metrics.AveragePrecisionAtN(scores, targets, 4, 2).Sum, 12);
        // An image without labels is left out.
        Assert.Equal(0, Metrics.AveragePrecisionAtN(scores, new float[4], 4).Count);
    }
}
