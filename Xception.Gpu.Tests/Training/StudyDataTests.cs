using Xception.Gpu.Data;
using Xception.Gpu.Training;
using Xunit;

namespace Xception.Gpu.Tests.Training;

/// <summary>
/// The data side of the paper's studies: evaluation intervals that cut the epochs anew without changing a batch,
/// and fixed subsets of a data set.
/// </summary>
public class StudyDataTests
{
    /// <summary>23 images in batches of 4: 6 steps per epoch, the last one of 3 images (a ragged end inside an interval).</summary>
    static TrainingData Data(int seed) =>
        DataBinding.Bind(new SyntheticSource(23, size: 8), Split.Make(23, 0, seed), 4, 8, 3, Augment.Default, seed, strict: false);

    static string Key(TrainBatch b) => $"{b.Count}:{string.Join(",", b.Labels!)}:{BitConverter.ToString(System.Security.Cryptography.SHA256.HashData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(b.X.AsSpan())))}";

    [Theory]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(1)]
    [InlineData(14)]
    public void IntervalsHoldTheEpochsBatchesInOrder(int steps)
    {
        var data = Data(3);
        var epochs = Enumerable.Range(0, 4).SelectMany(e => data.TrainBatches(e, 0)).Select(Key).ToList(); // 24 steps
        var cut = EvaluationIntervals.Of(data, steps);
        Assert.Equal(steps, cut.StepsPerEpoch);
        var intervals = Enumerable.Range(0, 24 / steps).SelectMany(i => cut.TrainBatches(i, 0)).Select(Key).ToList();
        Assert.Equal(epochs.Take(intervals.Count), intervals);
        Assert.All(Enumerable.Range(0, 24 / steps), i => Assert.Equal(steps, cut.TrainBatches(i, 0).Count()));

        // Resumed in the middle of an interval: the batches from there on (what the trainer reads after a checkpoint).
        int interval = 1, start = steps / 2;
        if (24 / steps > interval)
            Assert.Equal(epochs.Skip(interval * steps + start).Take(steps - start), cut.TrainBatches(interval, start).Select(Key));
        Assert.Contains("intervals of", cut.Description);
    }

    [Fact]
    public void IntervalsDependOnTheSeedOnly()
    {
        // The same seed gives the same stream (every variant of a study reads it); another seed another order.
        var a = EvaluationIntervals.Of(Data(1), 5).TrainBatches(2, 0).Select(Key).ToList();
        var b = EvaluationIntervals.Of(Data(1), 5).TrainBatches(2, 0).Select(Key).ToList();
        var c = EvaluationIntervals.Of(Data(2), 5).TrainBatches(2, 0).Select(Key).ToList();
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public void AnIntervalOfNoStepsIsRefused()
    {
        var e = Assert.Throws<OpArgumentException>(() => EvaluationIntervals.Of(Data(0), 0));
        Assert.Contains("got 0", e.Message);
    }

    [Fact]
    public void ShuffledSubsetsAreFixedAndSpanTheClasses()
    {
        var source = new SyntheticSource(200);
        var a = SubsetSource.Shuffled(source, 50, 0);
        var b = SubsetSource.Shuffled(source, 50, 0);
        Assert.Equal(50, a.Count);
        var la = Enumerable.Range(0, 50).Select(i => a.Load(i).Label).ToList();
        Assert.Equal(la, Enumerable.Range(0, 50).Select(i => b.Load(i).Label));
        Assert.True(la.Distinct().Count() >= 8, $"a shuffled subset of 50 holds only classes {string.Join(",", la.Distinct())}");
        Assert.Equal(source.Load(7).Pixels, new SubsetSource(source, [3, 7], "two").Load(1).Pixels);
        Assert.Equal(200, SubsetSource.Shuffled(source, 1000, 0).Count);
        Assert.Contains("50 of synthetic", a.Description);
        Assert.Throws<OpArgumentException>(() => new SubsetSource(source, [200], "out of range"));
        Assert.Throws<OpArgumentException>(() => SubsetSource.Shuffled(source, 0, 0));
    }
}
