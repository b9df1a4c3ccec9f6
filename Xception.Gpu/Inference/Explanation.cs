using Xception.Gpu.Imaging;

namespace Xception.Gpu.Inference;

/// <summary>
/// A Grad-CAM explanation of one image: which class it explains and where in the image the evidence for that
/// class lies, as a <see cref="Height"/> x <see cref="Width"/> map (the explained layer's spatial size) in
/// [0, 1], row-major, its maximum 1 (or all zeros when nothing speaks for the class).
/// </summary>
public sealed record Explanation(int Class, string Label, float Logit, string Layer, int Height, int Width, float[] Heatmap)
{
    /// <summary>The heatmap's value at row <paramref name="y"/>, column <paramref name="x"/>.</summary>
    public float this[int y, int x] => Heatmap[y * Width + x];

    /// <summary>
    /// The heatmap drawn over <paramref name="image"/> (any size; normally the image that was explained) as
    /// Keras' Grad-CAM example draws it: see <see cref="HeatmapOverlay"/>.
    /// </summary>
    public RgbImage Overlay(RgbImage image) => HeatmapOverlay.Render(Heatmap, Height, Width, image);
}
