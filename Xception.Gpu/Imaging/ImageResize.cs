namespace Xception.Gpu.Imaging;

/// <summary>
/// Resizing that reproduces the two resizers a Keras pipeline uses, so a model sees the same pixels here as it
/// did in Python.
///
/// <see cref="ResizeMode.Nearest"/> follows Pillow's ImagingScaleAffine: for output column x the source column is
/// floor((x + 0.5) * in / out), which never leaves [0, in - 1]. Pillow computes the position in double precision
/// by starting at 0.5 * in / out and adding in / out per pixel; this code does the same, so the rare positions
/// that land on an integer round the same way.
///
/// <see cref="ResizeMode.Bilinear"/> follows TensorFlow's ResizeBilinear with half_pixel_centers, which
/// tf.image.resize uses: in float32, scale = in / out, source s = (x + 0.5) * scale - 0.5, lower = max(floor(s), 0),
/// upper = min(ceil(s), in - 1), weight = s - floor(s); rows are interpolated first, then columns. Positions
/// before the first pixel centre or after the last thus take the edge pixel (clamped). Shrinking does not
/// average (antialias=False), so each output pixel reads at most 2x2 source pixels.
/// </summary>
public static class ImageResize
{
    /// <summary>
    /// Resizes to <paramref name="width"/> x <paramref name="height"/>. Nearest copies pixels exactly; bilinear
    /// values are rounded half up to bytes (TensorFlow would keep them as floats: use <see cref="ResizeToFloats"/>
    /// where that matters).
    /// </summary>
    public static RgbImage Resize(RgbImage image, int width, int height, ResizeMode mode)
    {
        ArgumentNullException.ThrowIfNull(image);
        CheckSize(width, height);
        var dst = new byte[3L * width * height];
        if (mode == ResizeMode.Nearest)
        {
            var cols = NearestIndex(image.Width, width);
            var rows = NearestIndex(image.Height, height);
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                {
                    int s = 3 * (rows[y] * image.Width + cols[x]), d = 3 * (y * width + x);
                    dst[d] = image.Pixels[s]; dst[d + 1] = image.Pixels[s + 1]; dst[d + 2] = image.Pixels[s + 2];
                }
        }
        else
        {
            var f = ResizeToFloats(image, width, height, mode);
            for (int i = 0; i < f.Length; i++) dst[i] = (byte)Math.Clamp(MathF.Floor(f[i] + 0.5f), 0f, 255f);
        }
        return new RgbImage(width, height, dst);
    }

    /// <summary>
    /// Resizes to float pixel values in [0, 255], height x width x 3: the exact values tf.image.resize returns
    /// (it outputs float32 and Keras feeds them to the model unrounded).
    /// </summary>
    public static float[] ResizeToFloats(RgbImage image, int width, int height, ResizeMode mode)
    {
        ArgumentNullException.ThrowIfNull(image);
        CheckSize(width, height);
        var dst = new float[3L * width * height];
        var src = image.Pixels;
        if (mode == ResizeMode.Nearest)
        {
            var nearest = Resize(image, width, height, mode).Pixels;
            for (int i = 0; i < dst.Length; i++) dst[i] = nearest[i];
            return dst;
        }
        if (mode != ResizeMode.Bilinear) throw new OpArgumentException("resize", $"unknown resize mode {(int)mode}");

        var cols = BilinearTaps(image.Width, width);
        var rows = BilinearTaps(image.Height, height);
        int stride = 3 * image.Width;
        for (int y = 0; y < height; y++)
        {
            var (top, bottom, wy) = rows[y];
            for (int x = 0; x < width; x++)
            {
                var (left, right, wx) = cols[x];
                int d = 3 * (y * width + x);
                for (int c = 0; c < 3; c++)
                {
                    float tl = src[top * stride + 3 * left + c], tr = src[top * stride + 3 * right + c];
                    float bl = src[bottom * stride + 3 * left + c], br = src[bottom * stride + 3 * right + c];
                    // TensorFlow's compute_lerp, in its order of operations.
                    float t = tl + (tr - tl) * wx;
                    float b = bl + (br - bl) * wx;
                    dst[d + c] = t + (b - t) * wy;
                }
            }
        }
        return dst;
    }

    /// <summary>Pillow's nearest source index for each output index (see the class remarks).</summary>
    internal static int[] NearestIndex(int inSize, int outSize)
    {
        var idx = new int[outSize];
        double step = (double)inSize / outSize, pos = step * 0.5;
        for (int i = 0; i < outSize; i++, pos += step)
            idx[i] = Math.Min((int)pos, inSize - 1);
        return idx;
    }

    /// <summary>TensorFlow's half-pixel bilinear taps: (lower, upper, weight of upper) per output index.</summary>
    internal static (int Lower, int Upper, float Weight)[] BilinearTaps(int inSize, int outSize)
    {
        var taps = new (int, int, float)[outSize];
        float scale = (float)inSize / outSize;
        for (int i = 0; i < outSize; i++)
        {
            float s = (i + 0.5f) * scale - 0.5f;
            float lo = MathF.Floor(s);
            taps[i] = (Math.Max((int)lo, 0), Math.Min((int)MathF.Ceiling(s), inSize - 1), s - lo);
        }
        return taps;
    }

    static void CheckSize(int width, int height)
    {
        if (width <= 0 || height <= 0)
            throw new OpArgumentException("resize", $"target size {width}x{height} is not positive");
    }
}
