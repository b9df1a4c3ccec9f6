namespace Xception.Gpu.Data;

/// <summary>
/// Training-time augmentation: a random crop-and-scale (the Inception-style "random resized crop": a crop
/// covering a random fraction of the image's area with a random aspect ratio, resized to the model's input
/// size) and a random horizontal flip. Validation and evaluation use no augmentation (pass null), which just
/// resizes the whole image.
///
/// The random draws of sample i in epoch e come from a generator seeded by a hash of (seed, e, i) alone, so a
/// sample is augmented the same way whichever thread handles it and whenever, and a resumed run repeats them.
/// </summary>
public sealed record Augment
{
    /// <summary>Random crop-and-scale on or off.</summary>
    public bool Crop { get; init; } = true;

    /// <summary>Random horizontal flip on or off.</summary>
    public bool Flip { get; init; } = true;

    /// <summary>Smallest and largest fraction of the image's area the crop covers.</summary>
    public double MinArea { get; init; } = 0.6;
    /// <summary>See <see cref="MinArea"/>.</summary>
    public double MaxArea { get; init; } = 1.0;

    /// <summary>Smallest and largest crop aspect ratio (width / height); drawn uniformly in log space.</summary>
    public double MinAspect { get; init; } = 3.0 / 4.0;
    /// <summary>See <see cref="MinAspect"/>.</summary>
    public double MaxAspect { get; init; } = 4.0 / 3.0;

    /// <summary>Probability of a flip.</summary>
    public double FlipProbability { get; init; } = 0.5;

    /// <summary>Both augmentations with their usual settings.</summary>
    public static Augment Default { get; } = new();

    /// <summary>
    /// Draws the crop and flip of sample <paramref name="index"/> in <paramref name="epoch"/> for a
    /// <paramref name="width"/> x <paramref name="height"/> image. A crop is tried up to 10 times (a tall or wide
    /// image may not fit the drawn shape); after that the largest centred crop with an allowed aspect ratio is
    /// used, as torchvision's RandomResizedCrop does.
    /// </summary>
    public CropPlan Plan(int width, int height, int seed, int epoch, int index)
    {
        if (width <= 0 || height <= 0) throw new OpArgumentException("augment", $"image size {width}x{height} is not positive");
        Check();
        var rng = Rng.For(Rng.AugmentSalt, seed, epoch, index);
        var (x, y, w, h) = (0, 0, width, height);
        if (Crop) (x, y, w, h) = DrawCrop(ref rng, width, height);
        bool flip = Flip && rng.NextDouble() < FlipProbability;
        return new CropPlan(x, y, w, h, flip);
    }

    (int, int, int, int) DrawCrop(ref Rng rng, int width, int height)
    {
        double area = (double)width * height, logLo = Math.Log(MinAspect), logHi = Math.Log(MaxAspect);
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double target = area * rng.Uniform(MinArea, MaxArea);
            double aspect = Math.Exp(rng.Uniform(logLo, logHi));
            int w = (int)Math.Round(Math.Sqrt(target * aspect)), h = (int)Math.Round(Math.Sqrt(target / aspect));
            if (w >= 1 && h >= 1 && w <= width && h <= height)
                return (rng.Next(width - w + 1), rng.Next(height - h + 1), w, h);
        }
        double ratio = (double)width / height;
        int cw = width, ch = height;
        if (ratio < MinAspect) ch = Math.Max(1, (int)Math.Round(width / MinAspect));
        else if (ratio > MaxAspect) cw = Math.Max(1, (int)Math.Round(height * MaxAspect));
        return ((width - cw) / 2, (height - ch) / 2, cw, ch);
    }

    void Check()
    {
        if (!(MinArea > 0 && MinArea <= MaxArea && MaxArea <= 1))
            throw new OpArgumentException("augment", $"crop area range [{MinArea}, {MaxArea}] is not within (0, 1]");
        if (!(MinAspect > 0 && MinAspect <= MaxAspect && double.IsFinite(MaxAspect)))
            throw new OpArgumentException("augment", $"aspect ratio range [{MinAspect}, {MaxAspect}] is not positive and ordered");
        if (!(FlipProbability >= 0 && FlipProbability <= 1))
            throw new OpArgumentException("augment", $"flip probability {FlipProbability} is outside [0, 1]");
    }
}
