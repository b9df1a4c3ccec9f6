using Xception.Gpu.Data;
using Xception.Gpu.Imaging;
using Xunit;

namespace Xception.Gpu.Tests.Data;

/// <summary>Augmentation plans (determinism, ranges) and what crop, flip, resize and channel conversion do to pixels.</summary>
public class AugmentTests
{
    static float Tf(float v) => v / 127.5f - 1f;

    [Fact]
    public void PlanIsAPureFunctionOfSeedEpochAndIndex()
    {
        var aug = Augment.Default;
        Assert.Equal(aug.Plan(50, 40, 1, 2, 3), new Augment().Plan(50, 40, 1, 2, 3));
        var plans = new HashSet<CropPlan>();
        foreach (var (seed, epoch, index) in new[] { (1, 2, 3), (2, 2, 3), (1, 3, 3), (1, 2, 4), (0, 0, 0) })
            plans.Add(aug.Plan(50, 40, seed, epoch, index));
        Assert.Equal(5, plans.Count);
    }

    [Fact]
    public void CropsAndFlipsStayInRange()
    {
        var aug = Augment.Default;
        int flips = 0;
        for (int i = 0; i < 2000; i++)
        {
            var p = aug.Plan(200, 150, 5, 0, i);
            Assert.True(p.X >= 0 && p.Y >= 0 && p.X + p.Width <= 200 && p.Y + p.Height <= 150, $"{p} leaves the image");
            double area = (double)p.Width * p.Height / (200 * 150), aspect = (double)p.Width / p.Height;
            Assert.InRange(area, 0.6 - 0.01, 1.0);
            Assert.InRange(aspect, 0.75 - 0.01, 4.0 / 3 + 0.01);
            if (p.Flip) flips++;
        }
        Assert.InRange(flips, 900, 1100);
        // Off means off.
        Assert.Equal(CropPlan.Full(30, 20), (Augment.Default with { Crop = false, Flip = false }).Plan(30, 20, 1, 1, 1));
        Assert.All(Enumerable.Range(0, 50), i => Assert.False((Augment.Default with { Flip = false }).Plan(30, 20, 1, 1, i).Flip));
        // A sliver of an image cannot fit any allowed aspect ratio: the centred fallback still lies inside.
        var thin = aug.Plan(1, 100, 0, 0, 0);
        Assert.Equal((0, 1), (thin.X, thin.Width));
        Assert.Equal((100 - thin.Height) / 2, thin.Y);
        Assert.Equal(1, thin.Height);   // width 1 / (3/4) rounds to 1
    }

    /// <summary>A 4x3 RGB image whose pixel (x, y) channel c is 10 (y * 4 + x) + c.</summary>
    static RawImage Tiny()
    {
        var p = new byte[4 * 3 * 3];
        for (int y = 0; y < 3; y++) for (int x = 0; x < 4; x++) for (int c = 0; c < 3; c++) p[3 * (y * 4 + x) + c] = (byte)(10 * (y * 4 + x) + c);
        return new RawImage(4, 3, 3, p, 0);
    }

    [Fact]
    public void CropAndFlipDoWhatTheySay()
    {
        var img = Tiny();
        var dst = new float[2 * 2 * 3];
        // Crop 2x2 at (1, 1): pixels (1..2, 1..2); no resize at size 2; flipped left-right.
        SampleTransform.Prepare(img, 2, 3, new CropPlan(1, 1, 2, 2, Flip: true), dst);
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 2; x++)
                for (int c = 0; c < 3; c++)
                    Assert.Equal(Tf(10 * ((1 + y) * 4 + (1 + (1 - x))) + c), dst[3 * (y * 2 + x) + c]);

        // Without the flip the same crop comes out in the original order.
        SampleTransform.Prepare(img, 2, 3, new CropPlan(1, 1, 2, 2, Flip: false), dst);
        Assert.Equal(Tf(10 * (1 * 4 + 1)), dst[0]);

        // A 3x2 crop resized to 5x5: exactly ImageResize's bilinear floats of the cropped pixels.
        var crop = new byte[3 * 2 * 3];
        for (int y = 0; y < 2; y++) for (int x = 0; x < 3; x++) for (int c = 0; c < 3; c++) crop[3 * (y * 3 + x) + c] = img.Pixels[3 * ((y + 1) * 4 + x) + c];
        var want = ImageResize.ResizeToFloats(new RgbImage(3, 2, crop), 5, 5, ResizeMode.Bilinear);
        var big = new float[5 * 5 * 3];
        SampleTransform.Prepare(img, 5, 3, new CropPlan(0, 1, 3, 2, false), big);
        Assert.Equal(want.Select(Tf), big);
        SampleTransform.Prepare(img, 5, 3, new CropPlan(0, 1, 3, 2, true), big);
        for (int y = 0; y < 5; y++) for (int x = 0; x < 5; x++) Assert.Equal(Tf(want[3 * (y * 5 + 4 - x) + 1]), big[3 * (y * 5 + x) + 1]);

        Assert.Equal("sample: crop 3x2 at (2, 1) is outside the 4x3 image",
            Assert.Throws<OpArgumentException>(() => SampleTransform.Prepare(img, 2, 3, new CropPlan(2, 1, 3, 2, false), dst)).Message);
    }

    [Fact]
    public void NoAugmentationIsAPlainResize()
    {
        var img = Tiny();
        var want = ImageResize.ResizeToFloats(new RgbImage(4, 3, img.Pixels), 6, 6, ResizeMode.Bilinear);
        var got = new float[6 * 6 * 3];
        SampleTransform.Prepare(img, 6, 3, augment: null, seed: 1, epoch: 5, index: 7, got);
        Assert.Equal(want.Select(Tf), got);
        // With augmentation, the result is the one its plan gives.
        var plan = Augment.Default.Plan(4, 3, 1, 5, 7);
        var viaPlan = new float[6 * 6 * 3];
        SampleTransform.Prepare(img, 6, 3, plan, viaPlan);
        SampleTransform.Prepare(img, 6, 3, Augment.Default, 1, 5, 7, got);
        Assert.Equal(viaPlan, got);
    }

    [Fact]
    public void ChannelConversions()
    {
        // RGB to one channel: ITU-R 601-2 luma rounded as PIL's convert('L').
        byte[] rgb = [255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 10, 20, 30, 0, 0, 0];
        Assert.Equal([76, 150, 29, 255, 18, 0], SampleTransform.ToGray(rgb));
        var one = new float[2 * 2 * 1];
        SampleTransform.Prepare(new RawImage(2, 2, 3, rgb[..12], 0), 2, 1, CropPlan.Full(2, 2), one);
        Assert.Equal(new byte[] { 76, 150, 29, 255 }.Select(v => Tf(v)), one);

        // One channel to RGB: replicated.
        var g = new RawImage(2, 1, 1, [7, 200], 0);
        var three = new float[2 * 1 * 3];
        Assert.Throws<ShapeException>(() => SampleTransform.Prepare(g, 2, 3, CropPlan.Full(2, 1), three));   // 2x1 is not a 2x2 slot
        var slot = new float[2 * 2 * 3];
        SampleTransform.Prepare(new RawImage(2, 2, 1, [7, 200, 0, 255], 0), 2, 3, CropPlan.Full(2, 2), slot);
        Assert.Equal(new byte[] { 7, 7, 7, 200, 200, 200, 0, 0, 0, 255, 255, 255 }.Select(v => Tf(v)), slot);
        Assert.Equal([7, 7, 7, 200, 200, 200], SampleTransform.ToRgb([7, 200]));

        // Gray to gray keeps the values; the 'tf' range is [-1, 1].
        var same = new float[4];
        SampleTransform.Prepare(new RawImage(2, 2, 1, [0, 255, 128, 1], 0), 2, 1, CropPlan.Full(2, 2), same);
        Assert.Equal([-1f, 1f, Tf(128), Tf(1)], same);
    }

    [Fact]
    public void ShiftsStayWithinThePaddingAndFillBlack()
    {
        var shift = Augment.Shift(3);
        var seen = new HashSet<(int, int)>();
        for (int i = 0; i < 3000; i++)
        {
            var p = shift.Plan(28, 28, 2, 1, i);
            Assert.True(p.Padded);
            Assert.InRange(p.X, -3, 3);
            Assert.InRange(p.Y, -3, 3);
            Assert.Equal((28, 28), (p.Width, p.Height));
            seen.Add((p.X, p.Y));
        }
        Assert.Equal(49, seen.Count);   // every offset of the 7x7 is drawn
        // Shift plans leave the crop-and-scale's draws alone: a plan is still a pure function of its key.
        Assert.Equal(shift.Plan(28, 28, 2, 1, 5), Augment.Shift(3).Plan(28, 28, 2, 1, 5));

        // The 4x3 image moved right by 1 and down by 2 (crop at (-1, -2)): black where nothing was.
        var img = Tiny();
        var dst = new float[4 * 4 * 3];
        SampleTransform.Prepare(img, 4, 3, new CropPlan(-1, -2, 4, 4, false) { Padded = true }, dst);
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 4; x++)
            {
                int sx = x - 1, sy = y - 2;
                float want = sx >= 0 && sx < 4 && sy >= 0 && sy < 3 ? Tf(10 * (sy * 4 + sx)) : -1f;
                Assert.Equal(want, dst[3 * (y * 4 + x)]);
            }
        // An unpadded plan may not leave the image; a padded one must still overlap it.
        Assert.Throws<OpArgumentException>(() => SampleTransform.Prepare(img, 4, 3, new CropPlan(-1, 0, 4, 4, false), dst));
        Assert.Throws<OpArgumentException>(() => SampleTransform.Prepare(img, 4, 3, new CropPlan(4, 0, 4, 4, false) { Padded = true }, dst));
        Assert.Throws<OpArgumentException>(() => (Augment.Default with { Padding = 2 }).Plan(4, 3, 0, 0, 0));
    }

    [Fact]
    public void RandomErasingReplacesOneRectangleWithRandomValues()
    {
        var aug = Augment.Shift(2) with { EraseProbability = 0.5 };
        int erased = 0;
        for (int i = 0; i < 2000; i++)
        {
            var p = aug.Plan(28, 28, 1, 0, i, inputSize: 28);
            // Erasing draws after the crop and the flip: those are the plans without it.
            var q = Augment.Shift(2).Plan(28, 28, 1, 0, i);
            Assert.Equal((q.X, q.Y, q.Flip), (p.X, p.Y, p.Flip));
            var e = p.Erase;
            if (e.Width == 0) continue;
            erased++;
            Assert.True(e.X >= 0 && e.Y >= 0 && e.X + e.Width <= 28 && e.Y + e.Height <= 28, $"{e} leaves the input");
            double area = e.Width * e.Height / (28.0 * 28);
            Assert.InRange(area, 0.02 * 0.8, 0.4 * 1.2);   // rounding w and h to pixels moves the area a little
            Assert.InRange((double)e.Height / e.Width, 0.3 * 0.8, 1 / 0.3 * 1.25);
        }
        Assert.InRange(erased, 900, 1100);
        Assert.Throws<OpArgumentException>(() => aug.Plan(28, 28, 1, 0, 0));   // erasing needs the input size

        // In the sample: only the rectangle changes, to values in [-1, 1] that are not the image's.
        var img = new RawImage(8, 8, 1, Enumerable.Repeat((byte)255, 64).ToArray(), 0);
        var plain = new float[64];
        var got = new float[64];
        var plan = new CropPlan(0, 0, 8, 8, false) { Erase = (2, 3, 4, 2), EraseSeed = 99 };
        SampleTransform.Prepare(img, 8, 1, CropPlan.Full(8, 8), plain);
        SampleTransform.Prepare(img, 8, 1, plan, got);
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++)
            {
                bool inside = x >= 2 && x < 6 && y >= 3 && y < 5;
                if (inside) Assert.InRange(got[y * 8 + x], -1f, 0.999f);
                else Assert.Equal(plain[y * 8 + x], got[y * 8 + x]);
            }
        Assert.Equal(8, got.Where(v => v < 1f).Distinct().Count());
        Assert.Throws<OpArgumentException>(() => SampleTransform.Prepare(img, 8, 1, plan with { Erase = (6, 3, 4, 2) }, got));
    }
}
