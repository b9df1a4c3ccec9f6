namespace Xception.Gpu.Data;

/// <summary>
/// MNIST-format data: an IDX image file (magic 0x00000803, [n, rows, cols] unsigned bytes) and an IDX label
/// file (magic 0x00000801, [n] unsigned bytes), each gzipped or not, read into memory once (Fashion-MNIST's
/// training set is 47 MB). Samples are gray (1 channel). Classes is the largest label + 1; the class names are
/// Fashion-MNIST's when the images' folder name contains "fashion", else the label numbers.
/// </summary>
public sealed class IdxSource : IDataSource
{
    /// <summary>Fashion-MNIST's classes, in label order (from the data set's README).</summary>
    public static readonly IReadOnlyList<string> FashionMnistClasses =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>The magic numbers: unsigned bytes (0x08) in 3 dimensions for images, 1 for labels.</summary>
    public const uint ImagesMagic = 0x00000803, LabelsMagic = 0x00000801;

    readonly byte[] images;   // the data only, Count * Rows * Cols bytes, header excluded
    readonly byte[] labels;   // Count bytes
    readonly string[] classNames;

    /// <inheritdoc/>
    public int Count { get; }
    /// <summary>Image height and width in pixels, the same for every image in an IDX file.</summary>
    public int Rows { get; }
    /// <summary>See <see cref="Rows"/>.</summary>
    public int Cols { get; }
    /// <inheritdoc/>
    public int Classes => classNames.Length;
    /// <inheritdoc/>
    public IReadOnlyList<string> ClassNames => classNames;
    /// <inheritdoc/>
    public bool MultiLabel => false;
    /// <inheritdoc/>
    public string Description { get; }

    /// <summary>Reads both files; throws a <see cref="DataException"/> naming the file for a wrong magic, a
    /// truncated file, or image and label counts that differ.</summary>
    public IdxSource(string imagesPath, string labelsPath)
    {
        ArgumentNullException.ThrowIfNull(imagesPath);
        ArgumentNullException.ThrowIfNull(labelsPath);
        var (dims, imageData) = IdxFile.Read(imagesPath, "images", ImagesMagic);
        images = imageData;
        (Count, Rows, Cols) = (dims[0], dims[1], dims[2]);
        if (Rows == 0 || Cols == 0)
            throw new DataException(imagesPath, $"images file '{imagesPath}' holds {Rows}x{Cols} images; expected a positive size");

        var (ldims, labelData) = IdxFile.Read(labelsPath, "labels", LabelsMagic);
        labels = labelData;
        if (ldims[0] != Count)
            throw new DataException(labelsPath, $"labels file '{labelsPath}' holds {ldims[0]} labels but images file '{imagesPath}' holds {Count} images; expected one label per image");
        if (Count == 0)
            throw new DataException(imagesPath, $"images file '{imagesPath}' holds no images");

        int max = 0;
        for (int i = 0; i < Count; i++) max = Math.Max(max, labels[i]);
        var folder = Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(imagesPath))) ?? "";
        bool fashion = folder.Contains("fashion", StringComparison.OrdinalIgnoreCase) && max < FashionMnistClasses.Count;
        classNames = fashion ? FashionMnistClasses.Take(max + 1).ToArray()
                             : Enumerable.Range(0, max + 1).Select(k => k.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        Description = $"IDX '{imagesPath}': {Count} gray {Cols}x{Rows} images, {Classes} classes";
    }

    /// <summary>The class index of sample <paramref name="index"/>.</summary>
    public int LabelOf(int index)
    {
        CheckIndex(index);
        return labels[index];
    }

    /// <inheritdoc/>
    public RawImage Load(int index)
    {
        CheckIndex(index);
        int n = Rows * Cols;
        var pixels = images.AsSpan(index * n, n).ToArray();
        return new RawImage(Cols, Rows, 1, pixels, labels[index]);
    }

    void CheckIndex(int index)
    {
        if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index), $"sample {index} is outside 0..{Count - 1}");
    }
}
