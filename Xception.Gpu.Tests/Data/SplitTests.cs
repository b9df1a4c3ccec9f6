using Xception.Gpu.Data;
using Xunit;

namespace Xception.Gpu.Tests.Data;

/// <summary>Train/validation splits and epoch orders: sizes, disjointness, and reproducibility from the seed alone.</summary>
public class SplitTests
{
    [Theory]
    [InlineData(10, 0.2, 8, 2)]
    [InlineData(7, 0.5, 4, 3)]     // floor(3.5) = 3 validation samples, as Keras' validation_split
    [InlineData(5, 0.0, 5, 0)]
    [InlineData(1, 0.5, 1, 0)]
    [InlineData(1000, 0.1, 900, 100)]
    public void Sizes(int count, double fraction, int train, int validation)
    {
        var s = Split.Make(count, fraction, seed: 3);
        Assert.Equal(train, s.Train.Length);
        Assert.Equal(validation, s.Validation.Length);
        Assert.Equal(Enumerable.Range(0, count), s.Train.Concat(s.Validation).Order());
        Assert.Equal(s.Train.Order(), s.Train);
        Assert.Equal(s.Validation.Order(), s.Validation);
    }

    [Fact]
    public void DeterministicAndSeeded()
    {
        var a = Split.Make(100, 0.25, seed: 1);
        Assert.Equal(a.Validation, Split.Make(100, 0.25, seed: 1).Validation);
        Assert.NotEqual(a.Validation, Split.Make(100, 0.25, seed: 2).Validation);
        Assert.NotEqual(Enumerable.Range(75, 25), a.Validation);   // shuffled before the split, not just the tail
        Assert.Equal(Enumerable.Range(0, 100), Split.Make(100, 0, seed: 1).Train);
    }

    [Fact]
    public void BadFractions()
    {
        Assert.Equal("split: validation fraction 1 is outside [0, 1)", Assert.Throws<OpArgumentException>(() => Split.Make(10, 1.0)).Message);
        Assert.Equal("split: validation fraction -0.1 is outside [0, 1)", Assert.Throws<OpArgumentException>(() => Split.Make(10, -0.1)).Message);
        Assert.Throws<OpArgumentException>(() => Split.Make(10, double.NaN));
        Assert.Equal("split: a data set of 0 samples cannot be split; expected at least 1", Assert.Throws<OpArgumentException>(() => Split.Make(0, 0.1)).Message);
    }

    [Fact]
    public void EpochOrderIsAReproduciblePermutationPerEpoch()
    {
        var s = Split.Make(200, 0.1, seed: 9);
        var e0 = s.EpochOrder(0);
        var e1 = s.EpochOrder(1);
        Assert.Equal(s.Train, e0.Order());
        Assert.Equal(s.Train, e1.Order());
        Assert.NotEqual(e0, e1);
        Assert.NotEqual(s.Train, e0);
        // A resumed run rebuilds the split and gets the same order for the same epoch, in any call order.
        var resumed = Split.Make(200, 0.1, seed: 9);
        Assert.Equal(e1, resumed.EpochOrder(1));
        Assert.Equal(e0, resumed.EpochOrder(0));
        Assert.Equal(e1, s.EpochOrder(1));
        Assert.NotEqual(e0, Split.Make(200, 0.1, seed: 10).EpochOrder(0));
        Assert.Equal(e0, Split.EpochOrder(s.Train, 9, 0));
    }
}
