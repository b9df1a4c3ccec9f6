namespace Xception.Gpu.Data;

/// <summary>
/// Part of a source: the samples at some of its indices, renumbered 0 to Count - 1 (a fixed training subset, a
/// held-out part). Loads from the source it wraps, so it is as thread-safe as that source.
/// </summary>
public sealed class SubsetSource : IDataSource
{
    readonly IDataSource source;
    readonly int[] indices;

    /// <param name="source">the data set the subset is taken from</param>
    /// <param name="indices">indices into <paramref name="source"/>, each in range; kept in the order given</param>
    /// <param name="what">a few words for <see cref="Description"/>, e.g. "the first 5000 after a shuffle with seed 0"</param>
    public SubsetSource(IDataSource source, IReadOnlyList<int> indices, string what)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(indices);
        foreach (var i in indices)
            if (i < 0 || i >= source.Count) throw new OpArgumentException("subset", $"index {i} is outside the source's {source.Count} samples");
        this.source = source;
        this.indices = [.. indices];
        Description = $"{indices.Count} of {source.Description} ({what})";
    }

    /// <summary>
    /// The first <paramref name="count"/> samples of <paramref name="source"/> after a shuffle seeded by
    /// <paramref name="seed"/> (all of them, shuffled, when count is at least the source's size), so that a subset
    /// of a sorted data set still holds every class. The same (count, seed) always picks the same samples.
    /// </summary>
    public static SubsetSource Shuffled(IDataSource source, int count, int seed)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (count < 1) throw new OpArgumentException("subset", $"a subset needs at least 1 sample, got {count}");
        var all = new int[source.Count];
        for (int i = 0; i < all.Length; i++) all[i] = i;
        Rng.For(Rng.SubsetSalt, seed, source.Count).Shuffle(all);
        return new SubsetSource(source, all[..Math.Min(count, all.Length)], $"the first {Math.Min(count, all.Length)} after a shuffle with seed {seed}");
    }

    public int Count => indices.Length;
    public int Classes => source.Classes;
    public IReadOnlyList<string> ClassNames => source.ClassNames;
    public bool MultiLabel => source.MultiLabel;
    public string Description { get; }

    public RawImage Load(int index)
    {
        if ((uint)index >= (uint)indices.Length) throw new ArgumentOutOfRangeException(nameof(index), index, $"the subset has {indices.Length} samples");
        return source.Load(indices[index]);
    }
}
