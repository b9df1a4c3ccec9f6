using Xception.Gpu.Inference;
using Xception.Gpu.Architecture;
using Xception.Gpu.Serving;
using Xunit;

namespace Xception.Gpu.Tests.Serving;

/// <summary>
/// The dynamic batcher on the CPU accelerator with the mini model: stacking, bit-identical results, and each way a
/// request can fail (queue full, queue timeout, cancelled while queued, drain). The timing-dependent cases are made
/// certain with a long max queue delay: a lone request then waits for the delay, far longer than the event tested.
/// </summary>
public class DynamicBatcherTests
{
    static XceptionModel Mini() => XceptionModel.Create(XceptionConfig.Mini(imageSize: 32), device: "cpu", seed: 5);

    static float[] Images(int count, int seed)
    {
        var rng = new Random(seed);
        var x = new float[count * 32 * 32 * 3];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        return x;
    }

    [Fact]
    public async Task ConcurrentRequestsAreStackedAndGetTheirOwnResultsBitForBit()
    {
        using var model = Mini();
        // Each request alone, straight from the model.
        var inputs = Enumerable.Range(0, 6).Select(i => Images(1 + i % 3, 100 + i)).ToArray();
        var alone = inputs.Select(x => model.Probabilities(x, x.Length / (32 * 32 * 3))).ToArray();

        // A 500 ms queue delay and batches of 12: the six requests (12 images) form one batch.
        using var batcher = new DynamicBatcher(model, new BatchingOptions { MaxBatchSize = 12, MaxQueueDelayMicroseconds = 500_000 });
        var results = await Task.WhenAll(inputs.Select(x => Task.Run(() => batcher.InferAsync(x, x.Length / (32 * 32 * 3)))));
        for (int i = 0; i < inputs.Length; i++)
            Assert.True(alone[i].AsSpan().SequenceEqual(results[i]), $"request {i} differs from its result alone");
        Assert.Equal(12, batcher.Stats.Inferences);
        Assert.InRange(batcher.Stats.Executions, 1, 5); // fewer executions than requests
        Assert.Equal(0, batcher.Stats.Pending);
    }

    [Fact]
    public async Task AQueuedRequestPastItsTimeoutIsRejectedAtOnce()
    {
        using var model = Mini();
        using var batcher = new DynamicBatcher(model, new BatchingOptions { MaxBatchSize = 8, MaxQueueDelayMicroseconds = 5_000_000, QueueTimeoutMilliseconds = 100 });
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<RequestRejectedException>(() => batcher.InferAsync(Images(1, 1), 1));
        Assert.Contains("queue timeout", e.Message);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(3), $"the timeout took {sw.Elapsed}, not 100 ms");
        Assert.Equal(0, batcher.Stats.Inferences);
        Assert.Equal(0, batcher.Stats.Pending);
    }

    [Fact]
    public async Task ARequestCancelledWhileQueuedNeverRuns()
    {
        using var model = Mini();
        using var batcher = new DynamicBatcher(model, new BatchingOptions { MaxBatchSize = 8, MaxQueueDelayMicroseconds = 1_000_000 });
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => batcher.InferAsync(Images(1, 2), 1, cancel.Token));
        await Task.Delay(1500); // past the queue delay: a request still queued would have run by now
        Assert.Equal(0, batcher.Stats.Executions);
        Assert.Equal(0, batcher.Stats.Pending);
        // The batcher still serves.
        Assert.Equal(10, (await batcher.InferAsync(Images(1, 3), 1)).Length);
    }

    [Fact]
    public async Task AFullQueueRejectsAndTheBatcherRecovers()
    {
        using var model = Mini();
        using var batcher = new DynamicBatcher(model, new BatchingOptions { MaxBatchSize = 8, MaxQueueDelayMicroseconds = 1_000_000, MaxQueueSize = 2 });
        var first = batcher.InferAsync(Images(1, 4), 1);
        var second = batcher.InferAsync(Images(1, 5), 1);
        var e = await Assert.ThrowsAsync<RequestRejectedException>(() => batcher.InferAsync(Images(1, 6), 1));
        Assert.Contains("queue is full (2 requests", e.Message);
        await Task.WhenAll(first, second);
        Assert.Equal(1, batcher.Stats.Executions); // the two waited for the delay and ran together
        Assert.Equal(10, (await batcher.InferAsync(Images(1, 7), 1)).Length);
    }

    [Fact]
    public async Task DrainAnswersWhatWasAcceptedAndRefusesTheRest()
    {
        using var model = Mini();
        using var batcher = new DynamicBatcher(model, new BatchingOptions { MaxBatchSize = 4, MaxQueueDelayMicroseconds = 5_000_000 });
        var accepted = Enumerable.Range(0, 6).Select(i => batcher.InferAsync(Images(1, 10 + i), 1)).ToList();
        var drained = batcher.DrainAsync();
        await Assert.ThrowsAsync<RequestRejectedException>(() => batcher.InferAsync(Images(1, 20), 1));
        // The drain does not wait out the 5 s queue delay.
        await drained.WaitAsync(TimeSpan.FromSeconds(4));
        foreach (var r in accepted) Assert.Equal(10, (await r).Length);
        Assert.Equal(6, batcher.Stats.Inferences);
    }

    [Fact]
    public async Task BadRequestsAreRefusedBeforeTheyQueue()
    {
        using var model = Mini();
        using var batcher = new DynamicBatcher(model, new BatchingOptions { MaxBatchSize = 2 });
        Assert.Contains("1 to 2 images", (await Assert.ThrowsAsync<BadRequestException>(() => batcher.InferAsync(Images(3, 1), 3))).Message);
        Assert.Contains("input of 7 values does not hold 1 32x32x3 images", (await Assert.ThrowsAsync<BadRequestException>(() => batcher.InferAsync(new float[7], 1))).Message);
        var nan = Images(1, 1);
        nan[5] = float.NaN;
        Assert.Contains("input value 5 (image 0) is NaN", (await Assert.ThrowsAsync<BadRequestException>(() => batcher.InferAsync(nan, 1))).Message);
        Assert.Contains("class 10 is out of range", (await Assert.ThrowsAsync<BadRequestException>(() => batcher.ExplainAsync(Images(1, 1), 10))).Message);
        Assert.Contains("this model has no layer 'x'; explainable layers are", (await Assert.ThrowsAsync<BadRequestException>(() => batcher.ExplainAsync(Images(1, 1), null, "x"))).Message);
        Assert.Contains("max batch size is 0", Assert.Throws<ArgumentOutOfRangeException>(() => new BatchingOptions { MaxBatchSize = 0 }.Validate()).Message);
        Assert.Equal(0, batcher.Stats.Pending);
    }

    [Fact]
    public async Task AnExplanationRunsAloneAndMatchesTheModels()
    {
        using var model = Mini();
        var x = Images(1, 9);
        var want = model.Explain(x, 1, classIndex: 3)[0];
        using var batcher = new DynamicBatcher(model, new BatchingOptions());
        var inference = batcher.InferAsync(Images(1, 8), 1);
        var got = await batcher.ExplainAsync(x, 3);
        await inference;
        Assert.Equal(3, got.Class);
        Assert.True(want.Heatmap.AsSpan().SequenceEqual(got.Heatmap));
    }
}
