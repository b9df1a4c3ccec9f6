namespace Xception.Gpu.Imaging;

/// <summary>
/// Input preprocessing for Keras' Xception, whose <c>preprocess_input</c> uses 'tf' mode: every RGB value v
/// becomes v / 127.5 - 1 in float32, so [0, 255] maps to [-1, 1]. No mean subtraction, no channel swap.
/// Images go into an NHWC float batch (channels last, R, G, B), the layout the model's tensors use.
/// </summary>
public static class Preprocess
{
    /// <summary>Xception's input size (299 x 299).</summary>
    public const int XceptionSize = 299;

    /// <summary>'tf' mode for one value, computed as Keras does (x /= 127.5; x -= 1 on float32).</summary>
    public static float KerasTf(float v) => v / 127.5f - 1f;

    /// <summary>Writes <paramref name="image"/> as batch item <paramref name="index"/> of an NHWC buffer.</summary>
    public static void KerasTf(RgbImage image, Span<float> batch, int index)
    {
        ArgumentNullException.ThrowIfNull(image);
        var dst = Slot(batch, index, image.Width, image.Height);
        var src = image.Pixels;
        for (int i = 0; i < src.Length; i++) dst[i] = KerasTf(src[i]);
    }

    /// <summary>
    /// Writes float pixels in [0, 255], height x width x 3 (as <see cref="ImageResize.ResizeToFloats"/> returns
    /// them), as batch item <paramref name="index"/> of an NHWC buffer.
    /// </summary>
    public static void KerasTf(ReadOnlySpan<float> pixels, int width, int height, Span<float> batch, int index)
    {
        if (width <= 0 || height <= 0 || pixels.Length != 3L * width * height)
            throw new ShapeException("preprocess", $"{pixels.Length} pixel values are not a {width}x{height}x3 image");
        var dst = Slot(batch, index, width, height);
        for (int i = 0; i < pixels.Length; i++) dst[i] = KerasTf(pixels[i]);
    }

    /// <summary>
    /// Loads a file, resizes it to <paramref name="size"/> x <paramref name="size"/> (skipped when it already is)
    /// and preprocesses it into batch item <paramref name="index"/>. Nearest is the default because Keras'
    /// Xception example, <c>load_img(path, target_size=(299, 299))</c>, resizes with PIL's NEAREST.
    /// </summary>
    public static void LoadKerasTf(string path, int size, Span<float> batch, int index, ResizeMode mode = ResizeMode.Nearest) =>
        KerasTf(ImageLoader.Load(path), size, batch, index, mode);

    /// <summary>
    /// As <see cref="LoadKerasTf(string, int, Span{float}, int, ResizeMode)"/> for an encoded image held in memory
    /// (an upload); <paramref name="name"/> only labels errors (see <see cref="ImageLoader.Decode"/>).
    /// </summary>
    public static void DecodeKerasTf(string name, byte[] bytes, int size, Span<float> batch, int index, ResizeMode mode = ResizeMode.Nearest) =>
        KerasTf(ImageLoader.Decode(name, bytes), size, batch, index, mode);

    /// <summary>Resizes <paramref name="image"/> to <paramref name="size"/> x <paramref name="size"/> (skipped when it already is) and preprocesses it into batch item <paramref name="index"/>.</summary>
    public static void KerasTf(RgbImage image, int size, Span<float> batch, int index, ResizeMode mode)
    {
        if (image.Width == size && image.Height == size) KerasTf(image, batch, index);
        else KerasTf(ImageResize.ResizeToFloats(image, size, size, mode), size, size, batch, index);
    }

    /// <summary>Loads, resizes and preprocesses one file into a new 1 x size x size x 3 batch.</summary>
    public static float[] LoadKerasTf(string path, int size = XceptionSize, ResizeMode mode = ResizeMode.Nearest)
    {
        if (size <= 0) throw new OpArgumentException("preprocess", $"image size {size} is not positive");
        var batch = new float[3L * size * size];
        LoadKerasTf(path, size, batch, 0, mode);
        return batch;
    }

    static Span<float> Slot(Span<float> batch, int index, int width, int height)
    {
        long per = 3L * width * height;
        if (batch.Length % per != 0)
            throw new ShapeException("preprocess", $"a batch buffer of {batch.Length} floats is not a whole number of {height}x{width}x3 images");
        long count = batch.Length / per;
        if (index < 0 || index >= count)
            throw new ShapeException("preprocess", $"image index {index} is outside a batch of {count} {height}x{width}x3 images");
        return batch.Slice((int)(index * per), (int)per);
    }
}
