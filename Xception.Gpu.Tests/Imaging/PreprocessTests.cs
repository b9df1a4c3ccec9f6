using StbImageWriteSharp;
using Xception.Gpu.Imaging;
using Xception.Gpu.Tests.IO;
using Xunit;

namespace Xception.Gpu.Tests.Imaging;

public class PreprocessTests
{
    [Fact]
    public void KerasTfMapsTheByteRangeToMinusOneToOne()
    {
        Assert.Equal(-1f, Preprocess.KerasTf(0));
        Assert.Equal(1f, Preprocess.KerasTf(255));
        Assert.Equal(0f, Preprocess.KerasTf(127.5f));
        Assert.Equal(128f / 127.5f - 1f, Preprocess.KerasTf(128));
    }

    [Fact]
    public void WritesTheImageAtItsBatchIndexInNhwcRgbOrder()
    {
        var img = new RgbImage(2, 1, [0, 255, 51, 102, 153, 204]);
        var batch = new float[3 * 6];
        Array.Fill(batch, 9f);
        Preprocess.KerasTf(img, batch, 1);
        Assert.All(batch[..6], v => Assert.Equal(9f, v));
        Assert.All(batch[12..], v => Assert.Equal(9f, v));
        Assert.Equal([-1f, 1f, 51 / 127.5f - 1, 102 / 127.5f - 1, 153 / 127.5f - 1, 204 / 127.5f - 1], batch[6..12]);
    }

    [Fact]
    public void BatchBufferMustFit()
    {
        var img = new RgbImage(2, 1, new byte[6]);
        var e = Assert.Throws<ShapeException>(() => Preprocess.KerasTf(img, new float[12], 2));
        Assert.Equal("preprocess: image index 2 is outside a batch of 2 1x2x3 images", e.Message);
        e = Assert.Throws<ShapeException>(() => Preprocess.KerasTf(img, new float[7], 0));
        Assert.Equal("preprocess: a batch buffer of 7 floats is not a whole number of 1x2x3 images", e.Message);
    }

    [Fact]
    public void LoadsResizesAndPreprocessesAFile()
    {
        using var dir = new TempDir();
        var px = new byte[3 * 2 * 2];
        for (int i = 0; i < px.Length; i++) px[i] = (byte)(20 * i);
        using (var ms = new MemoryStream())
        {
            new ImageWriter().WritePng(px, 2, 2, ColorComponents.RedGreenBlue, ms);
            File.WriteAllBytes(dir["in.png"], ms.ToArray());
        }
        var src = ImageLoader.Load(dir["in.png"]);

        var nearest = Preprocess.LoadKerasTf(dir["in.png"], 3);
        var expected = ImageResize.Resize(src, 3, 3, ResizeMode.Nearest).Pixels.Select(b => b / 127.5f - 1f).ToArray();
        Assert.Equal(expected, nearest);

        var bilinear = Preprocess.LoadKerasTf(dir["in.png"], 3, ResizeMode.Bilinear);
        expected = ImageResize.ResizeToFloats(src, 3, 3, ResizeMode.Bilinear).Select(v => v / 127.5f - 1f).ToArray();
        Assert.Equal(expected, bilinear);

        var same = Preprocess.LoadKerasTf(dir["in.png"], 2);
        Assert.Equal(px.Select(b => b / 127.5f - 1f).ToArray(), same);
    }
}
