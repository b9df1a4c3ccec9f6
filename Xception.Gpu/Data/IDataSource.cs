namespace Xception.Gpu.Data;

/// <summary>
/// A data set as an indexable list of labelled images. Training shuffles indices, splits them and loads samples
/// from several threads at once, so <see cref="Load"/> must be safe to call concurrently and must return the
/// same image for the same index every time (the batches of a seeded run depend on it).
/// </summary>
public interface IDataSource
{
    /// <summary>Number of samples; valid indices are 0 to Count - 1.</summary>
    int Count { get; }

    /// <summary>Number of classes: the width of the model's output layer.</summary>
    int Classes { get; }

    /// <summary>A name per class, in class-index order (Classes entries).</summary>
    IReadOnlyList<string> ClassNames { get; }

    /// <summary>True when each sample has a set of labels (<see cref="RawImage.Labels"/>) rather than one.</summary>
    bool MultiLabel { get; }

    /// <summary>One line saying what the data is and where it came from, for logs.</summary>
    string Description { get; }

    /// <summary>
    /// Decodes sample <paramref name="index"/>. An image that cannot be decoded throws an
    /// <see cref="Imaging.ImageException"/> naming its file, which the batch loader may skip.
    /// </summary>
    RawImage Load(int index);
}
