namespace Xception.Gpu.Data;

/// <summary>How a <see cref="BatchLoader"/> builds the batches of one epoch.</summary>
public sealed record BatchLoaderOptions
{
    /// <summary>Samples per batch; the last batch of the epoch holds the rest.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>The model's input size: every sample is resized to ImageSize x ImageSize.</summary>
    public int ImageSize { get; init; } = 299;

    /// <summary>The model's input channels, 1 or 3 (see <see cref="SampleTransform"/> for the conversions).</summary>
    public int Channels { get; init; } = 3;

    /// <summary>Training augmentation, or null (validation, evaluation) for a plain resize.</summary>
    public Augment? Augment { get; init; }

    /// <summary>The run's seed; with <see cref="Epoch"/> and the sample index it seeds each sample's augmentation.</summary>
    public int Seed { get; init; }

    /// <summary>The epoch whose batches these are; it seeds the augmentation, not the order (the caller passes the order).</summary>
    public int Epoch { get; init; }

    /// <summary>The first batch to produce: a run resumed in the middle of an epoch continues where it stopped.</summary>
    public int StartBatch { get; init; }

    /// <summary>Throw the <see cref="Imaging.ImageException"/> of an undecodable image instead of skipping the sample.</summary>
    public bool Strict { get; init; }

    /// <summary>Decoding threads; 0 means <see cref="Environment.ProcessorCount"/>.</summary>
    public int Workers { get; init; }

    /// <summary>Batches prepared ahead of the consumer; this bounds memory (Prefetch batches of floats).</summary>
    public int Prefetch { get; init; } = 3;

    /// <summary>
    /// Load only this part of every batch (the share of some replicas in a data-parallel run, e.g. one
    /// process's under MPI); null loads whole batches. The batch numbering stays the global one.
    /// </summary>
    public BatchShard? Shard { get; init; }

    /// <summary>How many skipped file names <see cref="BatchLoader.SkippedFiles"/> keeps.</summary>
    public int MaxSkippedNames { get; init; } = 10;
}

/// <summary>
/// Replicas [<paramref name="First"/>, First + <paramref name="Take"/>) of <paramref name="Parts"/>: a batch of
/// n samples is split into Parts shares, the first n mod Parts of them one sample larger (see
/// <see cref="Shares"/>), and this shard is the consecutive samples of the shares it takes.
/// </summary>
public sealed record BatchShard(int First, int Take, int Parts)
{
    /// <summary>Where this shard starts in a batch of <paramref name="count"/> samples, and how many it holds.</summary>
    public (int Offset, int Length) Of(int count)
    {
        var s = Shares(count, Parts);
        int offset = 0, length = 0;
        for (int i = 0; i < First; i++) offset += s[i];
        for (int i = First; i < First + Take; i++) length += s[i];
        return (offset, length);
    }

    /// <summary>Sizes of <paramref name="parts"/> even shares of <paramref name="count"/> samples, the larger ones first.</summary>
    public static int[] Shares(int count, int parts)
    {
        var s = new int[parts];
        for (int i = 0; i < parts; i++) s[i] = count / parts + (i < count % parts ? 1 : 0);
        return s;
    }
}
