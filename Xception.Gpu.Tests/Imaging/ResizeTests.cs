using Xception.Gpu.Imaging;
using Xunit;

namespace Xception.Gpu.Tests.Imaging;

/// <summary>
/// Both resizers against expectations worked out by hand from their definitions (see <see cref="ResizeMode"/>).
///
/// Nearest, floor((x + 0.5) * in / out): 3 -> 5 columns read 0, 0, 1, 2, 2 (positions 0.3, 0.9, 1.5, 2.1, 2.7);
/// 2 -> 4 rows read 0, 0, 1, 1; 7 -> 3 columns read 1, 3, 5 (1.17, 3.5, 5.83); 5 -> 2 rows read 1, 3 (1.25, 3.75).
///
/// Bilinear, s = (x + 0.5) * in / out - 0.5: 3 -> 5 gives s = -0.2 (clamped to column 0), 0.4, 1.0, 1.6,
/// 2.2 (clamped to column 2); 2 -> 4 gives -0.25 (row 0), 0.25, 0.75, 1.25 (row 1); 7 -> 3 gives 2/3, 3, 16/3;
/// 5 -> 2 gives 0.75, 3.25.
/// </summary>
public class ResizeTests
{
    /// <summary>R = 30x + 5y, G = 255 - R, B from <paramref name="blue"/> (or 40y + x): R and G are linear, so bilinear gives them at the source point exactly.</summary>
    static RgbImage Image(int w, int h, int[,]? blue = null)
    {
        var px = new byte[3 * w * h];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int r = 30 * x + 5 * y, i = 3 * (y * w + x);
                px[i] = (byte)r; px[i + 1] = (byte)(255 - r); px[i + 2] = (byte)(blue?[y, x] ?? 40 * y + x);
            }
        return new RgbImage(w, h, px);
    }

    static byte[] Gather(RgbImage src, int[] cols, int[] rows)
    {
        var e = new List<byte>();
        foreach (int y in rows)
            foreach (int x in cols)
                for (int c = 0; c < 3; c++) e.Add(src[x, y, c]);
        return e.ToArray();
    }

    [Fact]
    public void NearestUpscale3x2To5x4()
    {
        var src = Image(3, 2);
        var out_ = ImageResize.Resize(src, 5, 4, ResizeMode.Nearest);
        Assert.Equal((5, 4), (out_.Width, out_.Height));
        Check.Equal("pixels", out_.Pixels, Gather(src, [0, 0, 1, 2, 2], [0, 0, 1, 1]));
    }

    [Fact]
    public void NearestDownscale7x5To3x2()
    {
        var src = Image(7, 5);
        Check.Equal("pixels", ImageResize.Resize(src, 3, 2, ResizeMode.Nearest).Pixels, Gather(src, [1, 3, 5], [1, 3]));
    }

    [Fact]
    public void NearestSameSizeIsACopyAndFloatsMatchBytes()
    {
        var src = Image(7, 5);
        Check.Equal("same size", ImageResize.Resize(src, 7, 5, ResizeMode.Nearest).Pixels, src.Pixels);
        var bytes = ImageResize.Resize(src, 4, 9, ResizeMode.Nearest).Pixels;
        Check.Equal("floats", ImageResize.ResizeToFloats(src, 4, 9, ResizeMode.Nearest), Array.ConvertAll(bytes, b => (float)b));
    }

    static void Near(string what, float[] actual, double[] expected, double tol = 1e-3)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < actual.Length; i++)
            Assert.True(Math.Abs(actual[i] - expected[i]) <= tol, $"{what}: value {i} (pixel {i / 3}, channel {i % 3}) is {actual[i]}, expected {expected[i]}");
    }

    [Fact]
    public void BilinearUpscale3x2To5x4()
    {
        // Blue is not linear, so it checks the weights, their order and the edge clamping on its own:
        // row 0 is 0, 100, 200 and row 1 is 50, 250, 0.
        int[,] blue = { { 0, 100, 200 }, { 50, 250, 0 } };
        var src = Image(3, 2, blue);
        double[,] b =
        {
            { 0, 40, 100, 160, 200 },         // row 0 across: 0, 0.6*0 + 0.4*100, 100, 0.4*100 + 0.6*200, 200
            { 12.5, 62.5, 137.5, 145, 150 },  // a quarter of the way to row 1 (50, 130, 250, 100, 0)
            { 37.5, 107.5, 212.5, 115, 50 },  // three quarters of the way
            { 50, 130, 250, 100, 0 },         // row 1, clamped
        };
        double[] sx = [0, 0.4, 1, 1.6, 2], sy = [0, 0.25, 0.75, 1];
        var expected = new List<double>();
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 5; x++)
            {
                double r = 30 * sx[x] + 5 * sy[y];
                expected.AddRange([r, 255 - r, b[y, x]]);
            }
        var floats = ImageResize.ResizeToFloats(src, 5, 4, ResizeMode.Bilinear);
        Near("floats", floats, expected.ToArray());

        // As bytes the values round half up: 12.5 -> 13, 137.5 -> 138.
        var bytes = ImageResize.Resize(src, 5, 4, ResizeMode.Bilinear).Pixels;
        Check.Equal("bytes", bytes, expected.Select(v => (byte)Math.Floor(v + 0.5)).ToArray());
        Assert.Equal(13, bytes[3 * 5 + 2]);
        Assert.Equal(138, bytes[3 * 7 + 2]);
    }

    [Fact]
    public void BilinearDownscale7x5To3x2()
    {
        var src = Image(7, 5);
        double[] sx = [2.0 / 3, 3, 16.0 / 3], sy = [0.75, 3.25];
        var expected = new List<double>();
        foreach (double y in sy)
            foreach (double x in sx)
            {
                double r = 30 * x + 5 * y;
                expected.AddRange([r, 255 - r, 40 * y + x]);
            }
        // Float32 positions (scale 7/3 rounded) move the samples by about 1e-7 pixels: 1e-3 is far above that.
        Near("floats", ImageResize.ResizeToFloats(src, 3, 2, ResizeMode.Bilinear), expected.ToArray());
    }

    [Fact]
    public void BilinearSameSizeIsTheIdentity()
    {
        var src = Image(7, 5);
        Check.Equal("same size", ImageResize.Resize(src, 7, 5, ResizeMode.Bilinear).Pixels, src.Pixels);
    }

    [Fact]
    public void BadTargetSize()
    {
        var e = Assert.Throws<OpArgumentException>(() => ImageResize.Resize(Image(3, 2), 0, 4, ResizeMode.Nearest));
        Assert.Equal("resize: target size 0x4 is not positive", e.Message);
    }
}
