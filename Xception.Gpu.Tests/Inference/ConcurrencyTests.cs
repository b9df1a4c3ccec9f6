using Xception.Gpu.Inference;
using Xception.Gpu.Architecture;
using Xunit;

namespace Xception.Gpu.Tests.Inference;

/// <summary>One XceptionModel shared by many threads, as a server shares it.</summary>
public class ConcurrencyTests
{
    static float[] Images(int count, int size, int seed)
    {
        var rnd = new Random(seed);
        var x = new float[count * size * size * 3];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rnd.NextDouble() * 2 - 1);
        return x;
    }

    /// <summary>
    /// N threads x M calls of 1 to 3 images each (logits and probabilities mixed) give, bit for bit, what the
    /// same calls give one after another; and the model did combine concurrent requests into shared runs.
    /// </summary>
    [Theory]
    [InlineData("xception-mini", 4, 6)]
    [InlineData("xception", 4, 3)]
    public void ConcurrentCallsGiveTheSequentialResultsBitForBit(string name, int threads, int calls)
    {
        var config = name == "xception" ? new XceptionConfig { ImageSize = 71, Classes = 10 } : XceptionConfig.Mini(32, 3, 10);
        using var model = XceptionModel.Create(config, device: "cpu", seed: 3);
        int per = config.ImageSize * config.ImageSize * 3;
        var work = new (float[] X, int Count, bool Probabilities)[threads, calls];
        for (int t = 0; t < threads; t++)
            for (int c = 0; c < calls; c++)
            {
                int n = 1 + (t + c) % 3;
                work[t, c] = (Images(n, config.ImageSize, 100 * t + c), n, (t + c) % 2 == 0);
            }
        float[] Call((float[] X, int Count, bool Probabilities) w) =>
            w.Probabilities ? model.Probabilities(w.X, w.Count, batch: 4) : model.Logits(w.X, w.Count, batch: 4);

        var expected = new float[threads, calls][];
        for (int t = 0; t < threads; t++)
            for (int c = 0; c < calls; c++) expected[t, c] = Call(work[t, c]);
        var before = model.Stats;

        var got = new float[threads, calls][];
        using var start = new Barrier(threads);
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            start.SignalAndWait();
            for (int c = 0; c < calls; c++) got[t, c] = Call(work[t, c]);
        })).ToList();
        workers.ForEach(w => w.Start());
        workers.ForEach(w => w.Join());

        int differ = 0;
        for (int t = 0; t < threads; t++)
            for (int c = 0; c < calls; c++)
                if (!got[t, c].AsSpan().SequenceEqual(expected[t, c])) differ++;
        Assert.Equal(0, differ);
        var (runs, requests) = (model.Stats.Runs - before.Runs, model.Stats.Requests - before.Requests);
        Assert.Equal(threads * calls, requests);
        Assert.True(runs < requests, $"{requests} concurrent requests took {runs} device runs: none was combined");
        Assert.All(expected.Cast<float[]>(), r => Assert.All(r, v => Assert.True(float.IsFinite(v))));
        Assert.NotEqual(expected[0, 0], expected[1, 0]); // distinct inputs give distinct outputs: the check can fail
    }

    /// <summary>A failing request (here: NaN input) fails alone; the callers running beside it get their results.</summary>
    [Fact]
    public void NonFiniteInputIsRefusedAndDoesNotDisturbOthers()
    {
        var config = XceptionConfig.Mini(32, 3, 10);
        using var model = XceptionModel.Create(config, device: "cpu", seed: 1);
        var good = Images(2, 32, 7);
        var alone = model.Logits(good, 2);
        var bad = Images(1, 32, 8);
        bad[5 + 32 * 32 * 3 / 2] = float.NaN;
        var e = Assert.Throws<InferenceInputException>(() => model.Logits(bad, 1));
        Assert.Equal($"input value {5 + 32 * 32 * 3 / 2} (image 0) is NaN: the model takes finite values (Keras' 'tf' preprocessing gives -1..1)", e.Message);
        bad[5 + 32 * 32 * 3 / 2] = float.PositiveInfinity;
        Assert.Throws<InferenceInputException>(() => model.Probabilities(bad, 1));

        var results = new float[4][];
        var threads = Enumerable.Range(0, 4).Select(i => new Thread(() => results[i] = model.Logits(good, 2))).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.All(results, r => Assert.Equal(alone, r));

        var shape = Assert.Throws<ShapeException>(() => model.Logits(new float[10], 1));
        Assert.Equal("xception: input of 10 values does not hold 1 32x32x3 images (3072 values each): 3072 values expected", shape.Message);
        shape = Assert.Throws<ShapeException>(() => model.Logits([], 0));
        Assert.Equal("xception: the image count must be at least 1, got 0; expected 32x32x3 images (3072 values each)", shape.Message);
    }

    /// <summary>Features from 3 threads at once are, bit for bit, the features computed one call at a time.</summary>
    [Fact]
    public void ConcurrentFeaturesGiveTheSequentialResultsBitForBit()
    {
        var config = XceptionConfig.Mini(32, 3, 10) with { IncludeTop = false, Pooling = GlobalPooling.Avg };
        using var model = XceptionModel.Create(config, device: "cpu", seed: 4);
        Assert.True(model.IsFeatureModel);
        const int threads = 3, calls = 4;
        var inputs = new float[threads, calls][];
        var expected = new float[threads, calls][];
        for (int t = 0; t < threads; t++)
            for (int c = 0; c < calls; c++)
            {
                inputs[t, c] = Images(1 + (t + c) % 3, 32, 200 + 10 * t + c);
                expected[t, c] = model.Features(inputs[t, c], inputs[t, c].Length / (32 * 32 * 3), batch: 2);
            }
        var got = new float[threads, calls][];
        using var start = new Barrier(threads);
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            start.SignalAndWait();
            for (int c = 0; c < calls; c++) got[t, c] = model.Features(inputs[t, c], inputs[t, c].Length / (32 * 32 * 3), batch: 2);
        })).ToList();
        workers.ForEach(w => w.Start());
        workers.ForEach(w => w.Join());
        for (int t = 0; t < threads; t++)
            for (int c = 0; c < calls; c++)
                Assert.True(got[t, c].AsSpan().SequenceEqual(expected[t, c]), $"thread {t}, call {c} differs");
        Assert.Equal(model.FeatureSize * (1 + (2 + 3) % 3), got[2, 3].Length);
    }
}
