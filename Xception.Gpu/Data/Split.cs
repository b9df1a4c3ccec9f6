namespace Xception.Gpu.Data;

/// <summary>
/// A train/validation split of a source's indices and the per-epoch training order. Everything is a pure
/// function of (count, fraction, seed, epoch): a run resumed from a checkpoint at epoch e recomputes exactly the
/// order it would have used, with no generator state to save.
///
/// Like Keras' <c>validation_split</c>, the validation part is the last floor(fraction * count) indices after a
/// seeded shuffle, and it is not stratified.
/// </summary>
public sealed class Split
{
    /// <summary>Training indices, ascending.</summary>
    public int[] Train { get; }

    /// <summary>Validation indices, ascending (so evaluation reads them in a fixed, cache-friendly order); empty for fraction 0.</summary>
    public int[] Validation { get; }

    /// <summary>The seed the split and the epoch orders derive from.</summary>
    public int Seed { get; }

    Split(int[] train, int[] validation, int seed) { Train = train; Validation = validation; Seed = seed; }

    /// <summary>
    /// Splits indices 0 to <paramref name="count"/> - 1. <paramref name="validationFraction"/> must lie in [0, 1);
    /// at least one training index must remain.
    /// </summary>
    public static Split Make(int count, double validationFraction, int seed = 0)
    {
        if (count <= 0) throw new OpArgumentException("split", $"a data set of {count} samples cannot be split; expected at least 1");
        if (!(validationFraction >= 0 && validationFraction < 1))
            throw new OpArgumentException("split", $"validation fraction {validationFraction} is outside [0, 1)");
        int val = (int)(validationFraction * count);
        if (val >= count)
            throw new OpArgumentException("split", $"validation fraction {validationFraction} of {count} samples leaves none for training");
        var all = new int[count];
        for (int i = 0; i < count; i++) all[i] = i;
        if (val > 0) Rng.For(Rng.SplitSalt, seed, count).Shuffle(all);
        var train = all[..(count - val)];
        var validation = all[(count - val)..];
        Array.Sort(train);
        Array.Sort(validation);
        return new Split(train, validation, seed);
    }

    /// <summary>The training indices shuffled for <paramref name="epoch"/> by a generator seeded from (Seed, epoch).</summary>
    public int[] EpochOrder(int epoch) => EpochOrder(Train, Seed, epoch);

    /// <summary>Any index list shuffled as <see cref="EpochOrder(int)"/> shuffles the training indices.</summary>
    public static int[] EpochOrder(IReadOnlyList<int> indices, int seed, int epoch)
    {
        ArgumentNullException.ThrowIfNull(indices);
        var order = indices.ToArray();
        Rng.For(Rng.EpochSalt, seed, epoch).Shuffle(order);
        return order;
    }
}
