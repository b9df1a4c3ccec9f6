namespace Xception.Gpu.Data;

/// <summary>
/// A built-in image data set that needs no files, for smoke tests and demonstrations of training: each class is
/// a shape or texture family, drawn with a random position, size, small rotation, phase, colours and pixel
/// noise, so a small CNN separates the classes within a few epochs (the shapes are unambiguous) while a model
/// that only looks at colours or at fixed pixels cannot (colours, place and size carry no class information).
///
/// The classes, in index order: vertical bars, horizontal bars, diagonal bars (45 or 135 degrees at random),
/// concentric rings, a checkerboard, a filled disk, a square frame, an upright cross, a triangle and a
/// diagonal cross (the first <see cref="Classes"/> of them). Every class is closed under a left-right mirror
/// (mirrored diagonal bars are diagonal bars), so flip augmentation never turns one class into another. Sample i has class
/// i mod Classes and is a pure function of (seed, i, size), so any sample can be regenerated on its own.
/// </summary>
public sealed class SyntheticSource : IDataSource
{
    /// <summary>The shape families, in class order.</summary>
    public static readonly IReadOnlyList<string> Shapes =
        ["vertical-bars", "horizontal-bars", "diagonal-bars", "rings", "checkerboard", "disk", "frame", "cross", "triangle", "diagonal-cross"];

    /// <inheritdoc/>
    public int Count { get; }
    /// <inheritdoc/>
    public int Classes { get; }
    /// <summary>Image side in pixels, and the seed every image derives from.</summary>
    public int Size { get; }
    /// <summary>See <see cref="Size"/>.</summary>
    public int Seed { get; }
    /// <inheritdoc/>
    public IReadOnlyList<string> ClassNames { get; }
    /// <inheritdoc/>
    public bool MultiLabel => false;
    /// <inheritdoc/>
    public string Description => $"synthetic shapes (seed {Seed}): {Count} RGB {Size}x{Size} images, {Classes} classes";

    /// <summary><paramref name="count"/> images of <paramref name="classes"/> (1 to 10) shape classes, <paramref name="size"/> x <paramref name="size"/> pixels (at least 8).</summary>
    public SyntheticSource(int count, int classes = 10, int size = 32, int seed = 0)
    {
        if (count <= 0) throw new OpArgumentException("synthetic", $"image count {count} is not positive");
        if (classes < 1 || classes > Shapes.Count) throw new OpArgumentException("synthetic", $"{classes} classes; expected 1 to {Shapes.Count}");
        if (size < 8) throw new OpArgumentException("synthetic", $"image size {size}; expected at least 8");
        (Count, Classes, Size, Seed) = (count, classes, size, seed);
        ClassNames = Shapes.Take(classes).ToArray();
    }

    /// <inheritdoc/>
    public RawImage Load(int index)
    {
        if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index), $"sample {index} is outside 0..{Count - 1}");
        int label = index % Classes;
        var rng = Rng.For(Rng.SyntheticSalt, Seed, index, Size);
        double s = Size;
        double cx = s * rng.Uniform(0.3, 0.7), cy = s * rng.Uniform(0.3, 0.7);
        double r = s * rng.Uniform(0.22, 0.4);
        double angle = rng.Uniform(-15, 15) * Math.PI / 180;
        double period = Math.Max(3.0, r * rng.Uniform(0.4, 0.6));
        double phaseA = rng.NextDouble(), phaseB = rng.NextDouble();
        // One colour dark, one light, so the shape always stands out; which is the foreground is random.
        var dark = new double[3]; var light = new double[3];
        for (int c = 0; c < 3; c++) { dark[c] = rng.Uniform(0, 110); light[c] = rng.Uniform(145, 255); }
        var (fg, bg) = rng.NextDouble() < 0.5 ? (light, dark) : (dark, light);
        double noise = rng.Uniform(4, 16);
        double stripes = label switch { 0 => 0, 1 => 90, _ => rng.NextDouble() < 0.5 ? 45 : 135 } * Math.PI / 180;
        var shape = new Shape(label, r, period, phaseA, phaseB, stripes);

        double cos = Math.Cos(angle), sin = Math.Sin(angle);
        var pixels = new byte[3 * Size * Size];
        for (int y = 0; y < Size; y++)
            for (int x = 0; x < Size; x++)
            {
                // 2x2 supersampling: the coverage of the shape in the pixel, so edges are soft as in real photos.
                double cover = 0;
                for (int sy = 0; sy < 2; sy++)
                    for (int sx = 0; sx < 2; sx++)
                    {
                        double dx = x + 0.25 + 0.5 * sx - cx, dy = y + 0.25 + 0.5 * sy - cy;
                        if (shape.Inside(cos * dx + sin * dy, -sin * dx + cos * dy)) cover += 0.25;
                    }
                int d = 3 * (y * Size + x);
                for (int c = 0; c < 3; c++)
                {
                    double v = bg[c] + (fg[c] - bg[c]) * cover + noise * rng.Normal();
                    pixels[d + c] = (byte)Math.Clamp(Math.Round(v), 0, 255);
                }
            }
        return new RawImage(Size, Size, 3, pixels, label);
    }

    /// <summary>The shape of one class in local coordinates (u right, v down, centred, rotated).</summary>
    readonly record struct Shape(int Kind, double R, double Period, double PhaseA, double PhaseB, double StripeAngle)
    {
        public bool Inside(double u, double v)
        {
            double au = Math.Abs(u), av = Math.Abs(v), rho = Math.Sqrt(u * u + v * v);
            switch (Kind)
            {
                case <= 2:
                    if (au > R || av > R) return false;
                    return Frac((u * Math.Cos(StripeAngle) + v * Math.Sin(StripeAngle)) / Period + PhaseA) < 0.5;
                case 3: return rho <= R && Frac(rho / Period + PhaseA) < 0.5;
                case 4:
                    if (au > R || av > R) return false;
                    return ((long)Math.Floor(u / Period + PhaseA) + (long)Math.Floor(v / Period + PhaseB)) % 2 != 0;
                case 5: return rho <= 0.85 * R;
                case 6: return Math.Max(au, av) <= R && Math.Max(au, av) >= 0.6 * R;
                case 7: return Cross(au, av);
                case 8: return v >= -R && v <= 0.6 * R && au <= (v + R) / 1.6;
                default: return Cross(Math.Abs(u + v) * Math.Sqrt(0.5), Math.Abs(u - v) * Math.Sqrt(0.5));
            }
        }

        bool Cross(double au, double av) => (au <= 0.3 * R && av <= R) || (av <= 0.3 * R && au <= R);

        static double Frac(double x) => x - Math.Floor(x);
    }
}
