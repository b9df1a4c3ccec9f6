using Xception.Gpu.Imaging;

namespace Xception.Gpu.Data;

/// <summary>
/// Turns one <see cref="RawImage"/> into model input: channel conversion, crop, bilinear resize to the model
/// size with <see cref="ImageResize"/> (TensorFlow's half-pixel bilinear, as Keras'
/// <c>image_dataset_from_directory</c> resizes, unrounded floats), optional mirror, and Keras 'tf'
/// preprocessing (v / 127.5 - 1), written NHWC into the caller's batch slot.
///
/// Channels: a gray source feeding a 3-channel model is replicated into R, G and B (PIL's convert('RGB'));
/// an RGB source feeding a 1-channel model becomes ITU-R 601-2 luma, L = (19595 R + 38470 G + 7471 B + 2^15)
/// &gt;&gt; 16, the integer form PIL's convert('L') uses, before resizing, as Keras would load it with
/// color_mode='grayscale'.
/// </summary>
public static class SampleTransform
{
    /// <summary>
    /// Prepares <paramref name="image"/> with the augmentation of sample <paramref name="index"/> in
    /// <paramref name="epoch"/> (none when <paramref name="augment"/> is null: the whole image, resized).
    /// <paramref name="dst"/> receives size * size * channels floats.
    /// </summary>
    public static void Prepare(RawImage image, int size, int channels, Augment? augment, int seed, int epoch, int index, Span<float> dst)
    {
        ArgumentNullException.ThrowIfNull(image);
        var plan = augment is null ? CropPlan.Full(image.Width, image.Height) : augment.Plan(image.Width, image.Height, seed, epoch, index, size);
        Prepare(image, size, channels, plan, dst);
    }

    /// <summary>Prepares <paramref name="image"/> with an explicit crop and flip.</summary>
    public static void Prepare(RawImage image, int size, int channels, CropPlan plan, Span<float> dst)
    {
        ArgumentNullException.ThrowIfNull(image);
        image.Validate("image");
        if (size <= 0) throw new OpArgumentException("sample", $"model input size {size} is not positive");
        if (channels is not (1 or 3)) throw new OpArgumentException("sample", $"model input channels {channels}; expected 1 or 3");
        if (dst.Length != size * size * channels)
            throw new ShapeException("sample", $"a destination of {dst.Length} floats does not hold one {size}x{size}x{channels} image");
        if (plan.Width <= 0 || plan.Height <= 0 || (!plan.Padded && (plan.X < 0 || plan.Y < 0 || plan.X + plan.Width > image.Width || plan.Y + plan.Height > image.Height)))
            throw new OpArgumentException("sample", $"crop {plan.Width}x{plan.Height} at ({plan.X}, {plan.Y}) is outside the {image.Width}x{image.Height} image");
        if (plan.Padded && (plan.X <= -plan.Width || plan.Y <= -plan.Height || plan.X >= image.Width || plan.Y >= image.Height))
            throw new OpArgumentException("sample", $"padded crop {plan.Width}x{plan.Height} at ({plan.X}, {plan.Y}) does not overlap the {image.Width}x{image.Height} image");
        var erase = plan.Erase;
        if (erase.Width < 0 || erase.Height < 0 || (erase.Width > 0 && erase.Height > 0 &&
            (erase.X < 0 || erase.Y < 0 || erase.X + erase.Width > size || erase.Y + erase.Height > size)))
            throw new OpArgumentException("sample", $"erased rectangle {erase.Width}x{erase.Height} at ({erase.X}, {erase.Y}) is outside the {size}x{size} input");

        var (pixels, pc) = channels == 1 && image.Channels == 3 ? (ToGray(image.Pixels), 1) : (image.Pixels, image.Channels);
        var crop = CropToRgb(pixels, image.Width, pc, plan);
        float[] rgb;
        if (plan.Width == size && plan.Height == size)
        {
            rgb = new float[crop.Length];
            for (int i = 0; i < crop.Length; i++) rgb[i] = crop[i];
        }
        else rgb = ImageResize.ResizeToFloats(new RgbImage(plan.Width, plan.Height, crop), size, size, ResizeMode.Bilinear);

        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                int s = 3 * (y * size + (plan.Flip ? size - 1 - x : x)), d = channels * (y * size + x);
                for (int c = 0; c < channels; c++) dst[d + c] = Preprocess.KerasTf(rgb[s + c]);
            }
        if (erase.Width > 0 && erase.Height > 0)
        {
            var rng = new Rng(plan.EraseSeed);
            for (int y = erase.Y; y < erase.Y + erase.Height; y++)
                for (int i = channels * (y * size + erase.X), end = i + channels * erase.Width; i < end; i++)
                    dst[i] = (float)rng.Uniform(-1, 1);
        }
    }

    /// <summary>ITU-R 601-2 luma of interleaved RGB bytes, rounded as PIL's convert('L').</summary>
    public static byte[] ToGray(ReadOnlySpan<byte> rgb)
    {
        if (rgb.Length % 3 != 0) throw new ShapeException("gray", $"{rgb.Length} bytes are not whole RGB pixels");
        var gray = new byte[rgb.Length / 3];
        for (int i = 0; i < gray.Length; i++)
            gray[i] = (byte)((rgb[3 * i] * 19595 + rgb[3 * i + 1] * 38470 + rgb[3 * i + 2] * 7471 + 0x8000) >> 16);
        return gray;
    }

    /// <summary>Gray bytes replicated into R, G and B.</summary>
    public static byte[] ToRgb(ReadOnlySpan<byte> gray)
    {
        var rgb = new byte[3 * gray.Length];
        for (int i = 0; i < gray.Length; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = gray[i];
        return rgb;
    }

    /// <summary>
    /// The crop's pixels as interleaved RGB (gray replicated), the form <see cref="ImageResize"/> takes; the part
    /// of a padded crop outside the image stays black.
    /// </summary>
    static byte[] CropToRgb(byte[] pixels, int width, int channels, CropPlan plan)
    {
        int height = pixels.Length / (width * channels);
        var dst = new byte[3 * plan.Width * plan.Height];
        int x0 = Math.Max(0, -plan.X), x1 = Math.Min(plan.Width, width - plan.X);
        for (int y = Math.Max(0, -plan.Y); y < Math.Min(plan.Height, height - plan.Y); y++)
        {
            int row = (plan.Y + y) * width + plan.X;
            if (channels == 3)
                pixels.AsSpan(3 * (row + x0), 3 * (x1 - x0)).CopyTo(dst.AsSpan(3 * (y * plan.Width + x0)));
            else
                for (int x = x0; x < x1; x++)
                {
                    byte v = pixels[row + x];
                    int d = 3 * (y * plan.Width + x);
                    dst[d] = dst[d + 1] = dst[d + 2] = v;
                }
        }
        return dst;
    }
}
