namespace Xception.Gpu.Imaging;

/// <summary>
/// Draws a class activation heatmap over an image the way Keras' Grad-CAM example does: the [0, 1] heatmap is
/// quantized to 256 levels, coloured with matplotlib's "jet" colormap, scaled to 0..255, resized to the image,
/// added to it with weight 0.4, and the sum rescaled to 0..255 as <c>keras.utils.array_to_img</c> does
/// (minus its minimum, divided by its maximum). The example resizes the coloured heatmap with PIL's default
/// filter; this resizes it bilinearly.
/// </summary>
public static class HeatmapOverlay
{
    /// <summary>The weight of the coloured heatmap in the sum (the example's <c>alpha</c>).</summary>
    public const float Alpha = 0.4f;

    /// <summary>
    /// matplotlib's jet as breakpoints (x, value) per channel, the linear segments its LinearSegmentedColormap
    /// interpolates between: a colormap is data, and these are its published control points.
    /// </summary>
    static readonly (double X, double V)[][] JetSegments =
    [
        [(0, 0), (0.35, 0), (0.66, 1), (0.89, 1), (1, 0.5)],
        [(0, 0), (0.125, 0), (0.375, 1), (0.64, 1), (0.91, 0), (1, 0)],
        [(0, 0.5), (0.11, 1), (0.34, 1), (0.65, 0), (1, 0)],
    ];

    static readonly Lazy<float[]> jet = new(() =>
    {
        // 256 entries at x = i / 255, as matplotlib samples a colormap of N = 256.
        var table = new float[256 * 3];
        for (int i = 0; i < 256; i++)
            for (int c = 0; c < 3; c++) table[i * 3 + c] = (float)Interpolate(JetSegments[c], i / 255.0);
        return table;
    });

    static double Interpolate((double X, double V)[] s, double x)
    {
        for (int k = 1; k < s.Length; k++)
            if (x <= s[k].X) return s[k - 1].V + (s[k].V - s[k - 1].V) * (x - s[k - 1].X) / (s[k].X - s[k - 1].X);
        return s[^1].V;
    }

    /// <summary>The jet colour of a value in [0, 1] (clamped), channels in [0, 1], from the 256-entry table.</summary>
    public static (float R, float G, float B) Jet(float value)
    {
        int i = Level(value);
        var t = jet.Value;
        return (t[i * 3], t[i * 3 + 1], t[i * 3 + 2]);
    }

    /// <summary>As <c>np.uint8(255 * heatmap)</c>: truncation, after clamping to [0, 1] (and NaN to 0).</summary>
    static int Level(float v) => v > 0 ? (int)(255 * Math.Min(v, 1f)) : 0;

    /// <summary>
    /// The heatmap (<paramref name="height"/> x <paramref name="width"/>, row-major, values in [0, 1]) drawn over
    /// <paramref name="image"/>; the result has the image's size.
    /// </summary>
    public static RgbImage Render(ReadOnlySpan<float> heatmap, int height, int width, RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (height <= 0 || width <= 0 || heatmap.Length != (long)height * width)
            throw new ShapeException("heatmap", $"{heatmap.Length} values are not a {height}x{width} heatmap");

        // The coloured heatmap as 8-bit RGB: array_to_img rescales the jet colours (min 0, max 1 or less) so
        // that their maximum becomes 255, then truncates to bytes.
        var t = jet.Value;
        var colours = new float[heatmap.Length * 3];
        float lo = float.MaxValue, hi = float.MinValue;
        for (int p = 0; p < heatmap.Length; p++)
        {
            int i = Level(heatmap[p]);
            for (int c = 0; c < 3; c++)
            {
                float v = t[i * 3 + c];
                colours[p * 3 + c] = v;
                lo = Math.Min(lo, v);
                hi = Math.Max(hi, v);
            }
        }
        var small = new byte[colours.Length];
        for (int k = 0; k < colours.Length; k++) small[k] = ToByte(colours[k], lo, hi);
        var resized = ImageResize.ResizeToFloats(new RgbImage(width, height, small), image.Width, image.Height, ResizeMode.Bilinear);

        // superimposed = jet * alpha + img, then array_to_img's rescale to 0..255 over the whole image.
        var sum = new float[resized.Length];
        lo = float.MaxValue; hi = float.MinValue;
        for (int k = 0; k < sum.Length; k++)
        {
            sum[k] = resized[k] * Alpha + image.Pixels[k];
            lo = Math.Min(lo, sum[k]);
            hi = Math.Max(hi, sum[k]);
        }
        var pixels = new byte[sum.Length];
        for (int k = 0; k < sum.Length; k++) pixels[k] = ToByte(sum[k], lo, hi);
        return new RgbImage(image.Width, image.Height, pixels);
    }

    /// <summary>array_to_img's scaling: (v - min) / max(v - min) * 255 (unchanged when all are equal), truncated.</summary>
    static byte ToByte(float v, float lo, float hi)
    {
        float span = hi - lo;
        float s = span != 0 ? (v - lo) / span * 255f : v - lo;
        return (byte)Math.Clamp((int)s, 0, 255);
    }
}
