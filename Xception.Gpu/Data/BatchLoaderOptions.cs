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

    /// <summary>Throw the <see cref="ImageException"/> of an undecodable image instead of skipping the sample.</summary>
    public bool Strict { get; init; }

    /// <summary>Decoding threads; 0 means <see cref="Environment.ProcessorCount"/>.</summary>
    public int Workers { get; init; }

    /// <summary>Batches prepared ahead of the consumer; this bounds memory (Prefetch batches of floats).</summary>
    public int Prefetch { get; init; } = 3;

    /// <summary>How many skipped file names <see cref="BatchLoader.SkippedFiles"/> keeps.</summary>
    public int MaxSkippedNames { get; init; } = 10;
}
