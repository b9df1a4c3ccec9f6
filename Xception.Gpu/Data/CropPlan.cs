namespace Xception.Gpu.Data;

/// <summary>
/// Where one sample is cut from its image, whether it is mirrored and what part of it is erased: the whole
/// random part of augmentation, drawn once by <see cref="Augment.Plan"/> so that it can be inspected, logged
/// or replayed.
/// </summary>
/// <param name="X">Left column of the crop (negative or past the edge only when <see cref="Padded"/>).</param>
/// <param name="Y">Top row of the crop (see <paramref name="X"/>).</param>
/// <param name="Width">Crop width in pixels.</param>
/// <param name="Height">Crop height in pixels.</param>
/// <param name="Flip">Mirror left-right after resizing.</param>
public readonly record struct CropPlan(int X, int Y, int Width, int Height, bool Flip)
{
    /// <summary>The crop may reach outside the image; what lies outside is black (zero bytes), as zero padding.</summary>
    public bool Padded { get; init; }

    /// <summary>The erased rectangle in model-input pixels (after resize and flip); none when its size is zero.</summary>
    public (int X, int Y, int Width, int Height) Erase { get; init; }

    /// <summary>Seeds the erased pixels' random values (uniform over the preprocessed range [-1, 1]).</summary>
    public ulong EraseSeed { get; init; }

    /// <summary>The whole image, not mirrored: what evaluation uses.</summary>
    public static CropPlan Full(int width, int height) => new(0, 0, width, height, false);
}
