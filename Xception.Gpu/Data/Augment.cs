namespace Xception.Gpu.Data;

/// <summary>
/// Training-time augmentation: a random crop-and-scale (the Inception-style "random resized crop": a crop
/// covering a random fraction of the image's area with a random aspect ratio, resized to the model's input
/// size) or a random shift (<see cref="Padding"/>: the image padded with black and cropped back to its size, as
/// CIFAR and Fashion-MNIST training usually do), a random horizontal flip, and optionally random erasing (Zhong
/// et al., "Random Erasing Data Augmentation", AAAI 2020: a rectangle of 2-40% of the input with aspect ratio
/// 0.3-3.3 replaced by random values). Validation and evaluation use no augmentation (pass null), which just
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

    /// <summary>
    /// A random shift instead of the crop-and-scale: the image is padded by this many black pixels on every side
    /// and a window of its own size is cut at a uniformly drawn offset (0: off). Needs <see cref="Crop"/> off.
    /// </summary>
    public int Padding { get; init; }

    /// <summary>Probability of erasing a random rectangle of the model input (0: never).</summary>
    public double EraseProbability { get; init; }

    /// <summary>Smallest and largest fraction of the input's area an erased rectangle covers (Zhong et al.'s 0.02-0.4).</summary>
    public double EraseMinArea { get; init; } = 0.02;
    /// <summary>See <see cref="EraseMinArea"/>.</summary>
    public double EraseMaxArea { get; init; } = 0.4;

    /// <summary>Smallest aspect ratio (height / width) of an erased rectangle; the largest is its inverse (0.3: Zhong et al.'s).</summary>
    public double EraseMinAspect { get; init; } = 0.3;

    /// <summary>Crop-and-scale and flip with their usual settings.</summary>
    public static Augment Default { get; } = new();

    /// <summary>A shift of up to <paramref name="padding"/> pixels and a flip: the usual augmentation for small images.</summary>
    public static Augment Shift(int padding) => new() { Crop = false, Padding = padding };

    /// <summary>
    /// Draws the crop and flip of sample <paramref name="index"/> in <paramref name="epoch"/> for a
    /// <paramref name="width"/> x <paramref name="height"/> image. A crop is tried up to 10 times (a tall or wide
    /// image may not fit the drawn shape); after that the largest centred crop with an allowed aspect ratio is
    /// used, as torchvision's RandomResizedCrop does.
    /// </summary>
    /// <remarks>
    /// The erased rectangle is drawn in the coordinates of a <paramref name="inputSize"/> x inputSize model input;
    /// it is needed only when <see cref="EraseProbability"/> is above 0. Draws come in a fixed order (crop, flip,
    /// erase), so adding erasing does not change a sample's crop or flip.
    /// </remarks>
    public CropPlan Plan(int width, int height, int seed, int epoch, int index, int inputSize = 0)
    {
        if (width <= 0 || height <= 0) throw new OpArgumentException("augment", $"image size {width}x{height} is not positive");
        Check();
        if (EraseProbability > 0 && inputSize <= 0)
            throw new OpArgumentException("augment", $"random erasing needs the model's input size, got {inputSize}");
        var rng = Rng.For(Rng.AugmentSalt, seed, epoch, index);
        var (x, y, w, h) = (0, 0, width, height);
        if (Crop) (x, y, w, h) = DrawCrop(ref rng, width, height);
        else if (Padding > 0) (x, y) = (rng.Next(2 * Padding + 1) - Padding, rng.Next(2 * Padding + 1) - Padding);
        bool flip = Flip && rng.NextDouble() < FlipProbability;
        var plan = new CropPlan(x, y, w, h, flip) { Padded = Padding > 0 };
        if (EraseProbability > 0 && rng.NextDouble() < EraseProbability)
            plan = plan with { Erase = DrawErase(ref rng, inputSize), EraseSeed = rng.NextU64() };
        return plan;
    }

    /// <summary>Zhong et al.'s draw: up to 100 tries for a rectangle that fits; none if all fail.</summary>
    (int, int, int, int) DrawErase(ref Rng rng, int size)
    {
        double area = (double)size * size, logLo = Math.Log(EraseMinAspect), logHi = -logLo;
        for (int attempt = 0; attempt < 100; attempt++)
        {
            double target = area * rng.Uniform(EraseMinArea, EraseMaxArea);
            double aspect = Math.Exp(rng.Uniform(logLo, logHi));
            int h = (int)Math.Round(Math.Sqrt(target * aspect)), w = (int)Math.Round(Math.Sqrt(target / aspect));
            if (w >= 1 && h >= 1 && w < size && h < size)
                return (rng.Next(size - w + 1), rng.Next(size - h + 1), w, h);
        }
        return (0, 0, 0, 0);
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
        if (Padding < 0 || (Padding > 0 && Crop))
            throw new OpArgumentException("augment", $"padding {Padding} must be 0, or positive with the crop-and-scale off (they are two kinds of crop)");
        if (!(EraseProbability >= 0 && EraseProbability <= 1))
            throw new OpArgumentException("augment", $"erasing probability {EraseProbability} is outside [0, 1]");
        if (!(EraseMinArea > 0 && EraseMinArea <= EraseMaxArea && EraseMaxArea < 1))
            throw new OpArgumentException("augment", $"erased area range [{EraseMinArea}, {EraseMaxArea}] is not within (0, 1)");
        if (!(EraseMinAspect > 0 && EraseMinAspect <= 1))
            throw new OpArgumentException("augment", $"erased aspect ratio {EraseMinAspect} is not within (0, 1]");
    }
}
