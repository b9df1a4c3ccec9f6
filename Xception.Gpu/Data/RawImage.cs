namespace Xception.Gpu.Data;

/// <summary>
/// One decoded sample as a data source gives it, before resizing and preprocessing: 8-bit pixels, rows top to
/// bottom, channels interleaved (HWC). Sources keep their native channel count (1 for MNIST-style gray data,
/// 3 for RGB) so the conversion to what the model wants happens once, in <see cref="SampleTransform"/>.
/// </summary>
/// <param name="Width">Pixels per row.</param>
/// <param name="Height">Rows.</param>
/// <param name="Channels">1 (gray) or 3 (R, G, B).</param>
/// <param name="Pixels">Width * Height * Channels bytes; pixel (x, y) starts at Channels * (y * Width + x).</param>
/// <param name="Label">The class index for single-label data; -1 for multi-label data.</param>
/// <param name="Labels">The class indices present, ascending, for multi-label data; empty otherwise.</param>
public sealed record RawImage(int Width, int Height, int Channels, byte[] Pixels, int Label, int[] Labels)
{
    /// <summary>A single-label sample.</summary>
    public RawImage(int width, int height, int channels, byte[] pixels, int label) : this(width, height, channels, pixels, label, []) { }

    /// <summary>
    /// Throws a <see cref="DataException"/> naming <paramref name="what"/> unless the sizes, the channel count and
    /// the pixel buffer agree; a source bug would otherwise show up as garbage pixels or an index error later.
    /// </summary>
    public void Validate(string what)
    {
        if (Width <= 0 || Height <= 0)
            throw new DataException(what, $"{what}: image size {Width}x{Height} is not positive");
        if (Channels is not (1 or 3))
            throw new DataException(what, $"{what}: {Channels} channels; expected 1 (gray) or 3 (RGB)");
        if (Pixels is null || Pixels.Length != (long)Width * Height * Channels)
            throw new DataException(what, $"{what}: a {Width}x{Height}x{Channels} image needs {(long)Width * Height * Channels} bytes, got {Pixels?.Length ?? 0}");
        if (Labels is null)
            throw new DataException(what, $"{what}: Labels is null; expected an empty array for single-label data");
    }
}
