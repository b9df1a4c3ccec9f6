namespace Xception.Gpu.Imaging;

/// <summary>How <see cref="ImageResize"/> samples the source image.</summary>
public enum ResizeMode
{
    /// <summary>
    /// PIL's <c>Image.resize(size, NEAREST)</c>, the default of Keras' <c>load_img(target_size=...)</c>:
    /// output pixel x takes source pixel floor((x + 0.5) * in / out).
    /// </summary>
    Nearest,

    /// <summary>
    /// <c>tf.image.resize(method='bilinear', antialias=False)</c>, the default of Keras'
    /// <c>image_dataset_from_directory</c>: half-pixel centres, source coordinate (x + 0.5) * in / out - 0.5,
    /// clamped to the edge pixels, no antialiasing filter when shrinking.
    /// </summary>
    Bilinear,
}
