namespace Xception.Gpu.Data;

/// <summary>
/// Where one sample is cut from its image and whether it is mirrored: the whole random part of augmentation,
/// drawn once by <see cref="Augment.Plan"/> so that it can be inspected, logged or replayed.
/// </summary>
/// <param name="X">Left column of the crop.</param>
/// <param name="Y">Top row of the crop.</param>
/// <param name="Width">Crop width in pixels.</param>
/// <param name="Height">Crop height in pixels.</param>
/// <param name="Flip">Mirror left-right after resizing.</param>
public readonly record struct CropPlan(int X, int Y, int Width, int Height, bool Flip)
{
    /// <summary>The whole image, not mirrored: what evaluation uses.</summary>
    public static CropPlan Full(int width, int height) => new(0, 0, width, height, false);
}
