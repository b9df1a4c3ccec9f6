namespace Xception.Gpu.Imaging;

/// <summary>
/// An 8-bit RGB image, rows top to bottom, pixels interleaved R, G, B: the form every decoded file is brought
/// to, because Keras' <c>load_img</c> converts every image to PIL's 'RGB' mode before the model sees it.
/// </summary>
public sealed class RgbImage
{
    public int Width { get; }
    public int Height { get; }

    /// <summary>Width * Height * 3 bytes; pixel (x, y) starts at 3 (y * Width + x).</summary>
    public byte[] Pixels { get; }

    public RgbImage(int width, int height, byte[] pixels)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        if (width <= 0 || height <= 0)
            throw new OpArgumentException("image", $"size {width}x{height} is not positive");
        if (pixels.Length != 3L * width * height)
            throw new ShapeException("image", $"a {width}x{height} RGB image needs {3L * width * height} bytes, got {pixels.Length}");
        Width = width;
        Height = height;
        Pixels = pixels;
    }

    /// <summary>Channel <paramref name="c"/> (0 red, 1 green, 2 blue) of pixel (x, y).</summary>
    public byte this[int x, int y, int c] => Pixels[3 * (y * Width + x) + c];
}
