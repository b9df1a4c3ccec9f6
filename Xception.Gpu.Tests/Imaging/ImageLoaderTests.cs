using StbImageWriteSharp;
using Xception.Gpu.Imaging;
using Xception.Gpu.Tests.IO;
using Xunit;

namespace Xception.Gpu.Tests.Imaging;

/// <summary>
/// Decoding checks on images written at test time: PNG, BMP, TGA and JPEG by stb_image_write, palette,
/// 16-bit and 1-bit PNGs by <see cref="TinyPng"/>. Every result must be what PIL's convert('RGB') gives.
/// </summary>
public class ImageLoaderTests
{
    const int W = 4, H = 3;

    static string Save(TempDir dir, string name, byte[] pixels, ColorComponents comp, string format = "png", int w = W, int h = H)
    {
        using var ms = new MemoryStream();
        var writer = new ImageWriter();
        switch (format)
        {
            case "png": writer.WritePng(pixels, w, h, comp, ms); break;
            case "bmp": writer.WriteBmp(pixels, w, h, comp, ms); break;
            case "tga": writer.WriteTga(pixels, w, h, comp, ms); break;
            case "jpg": writer.WriteJpg(pixels, w, h, comp, ms, 100); break;
        }
        return dir.Write(name, ms.ToArray());
    }

    /// <summary>Distinct values per pixel and channel: 17 * (pixel index) + 50 * channel + offset, mod 256.</summary>
    static byte[] Pattern(int pixels, int channels, int offset = 3)
    {
        var a = new byte[pixels * channels];
        for (int p = 0; p < pixels; p++)
            for (int c = 0; c < channels; c++) a[p * channels + c] = (byte)((17 * p + 50 * c + offset) % 256);
        return a;
    }

    /// <summary>The first three channels of each pixel of <paramref name="channels"/>-channel data; gray replicated.</summary>
    static byte[] AsRgb(byte[] src, int channels)
    {
        int n = src.Length / channels;
        var rgb = new byte[3 * n];
        for (int p = 0; p < n; p++)
            for (int c = 0; c < 3; c++) rgb[3 * p + c] = src[p * channels + (channels >= 3 ? c : 0)];
        return rgb;
    }

    static void Decodes(string path, int w, int h, byte[] expectedRgb)
    {
        var img = ImageLoader.Load(path);
        Assert.Equal(w, img.Width);
        Assert.Equal(h, img.Height);
        Check.Equal(Path.GetFileName(path), img.Pixels, expectedRgb);
    }

    [Theory]
    [InlineData(ColorComponents.Grey, 1)]
    [InlineData(ColorComponents.GreyAlpha, 2)]
    [InlineData(ColorComponents.RedGreenBlue, 3)]
    [InlineData(ColorComponents.RedGreenBlueAlpha, 4)]
    public void PngBecomesRgbExactly(ColorComponents comp, int channels)
    {
        using var dir = new TempDir();
        var src = Pattern(W * H, channels);
        if (channels is 2 or 4) src[channels - 1] = 0;   // a fully transparent pixel keeps its colour: no compositing
        Decodes(Save(dir, $"c{channels}.png", src, comp), W, H, AsRgb(src, channels));
    }

    [Theory]
    [InlineData("bmp", ColorComponents.RedGreenBlue, 3)]
    [InlineData("bmp", ColorComponents.RedGreenBlueAlpha, 4)]
    [InlineData("tga", ColorComponents.RedGreenBlue, 3)]
    [InlineData("tga", ColorComponents.Grey, 1)]
    public void BmpAndTgaDecodeExactly(string format, ColorComponents comp, int channels)
    {
        using var dir = new TempDir();
        var src = Pattern(W * H, channels);
        Decodes(Save(dir, $"img.{format}", src, comp, format), W, H, AsRgb(src, channels));
    }

    [Fact]
    public void JpegIsCloseToItsSource()
    {
        // Four flat 16x16 quadrants: every 8x8 JPEG block (and every chroma block) is one colour, so the only
        // error is colour conversion and quantisation rounding, a few levels at quality 100.
        using var dir = new TempDir();
        const int S = 32;
        byte[][] colours = [[200, 30, 40], [20, 180, 60], [30, 40, 220], [128, 128, 128]];
        var src = new byte[S * S * 3];
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++)
                colours[(y / 16) * 2 + x / 16].CopyTo(src, 3 * (y * S + x));
        var img = ImageLoader.Load(Save(dir, "q.jpg", src, ColorComponents.RedGreenBlue, "jpg", S, S));
        Assert.Equal((S, S), (img.Width, img.Height));
        int worst = 0;
        for (int i = 0; i < src.Length; i++) worst = Math.Max(worst, Math.Abs(img.Pixels[i] - src[i]));
        Assert.True(worst <= 4, $"JPEG differs from its source by up to {worst} levels, expected at most 4");
    }

    [Fact]
    public void PalettePngIsLookedUp()
    {
        using var dir = new TempDir();
        byte[] palette = [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30];
        byte[] alpha = [255, 0, 128];   // tRNS: entry 1 fully transparent, entry 2 half; entry 3 opaque
        var png = TinyPng.Encode(3, 2, 8, TinyPng.Palette, [[0, 1, 2], [3, 2, 1]], palette, alpha);
        Decodes(dir.Write("pal8.png", png), 3, 2, [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 0, 0, 255, 0, 255, 0]);
    }

    [Fact]
    public void FourBitPaletteWithOddWidth()
    {
        using var dir = new TempDir();
        var palette = new byte[16 * 3];
        for (int i = 0; i < 16; i++) { palette[3 * i] = (byte)(16 * i); palette[3 * i + 1] = (byte)(255 - 16 * i); palette[3 * i + 2] = (byte)i; }
        int[][] idx = [[0, 5, 15, 9, 1], [7, 7, 2, 14, 3]];
        var png = TinyPng.Encode(5, 2, 4, TinyPng.Palette, idx.Select(r => TinyPng.RowPacked(4, r)).ToArray(), palette);
        var expected = idx.SelectMany(r => r).SelectMany(i => palette.Skip(3 * i).Take(3)).ToArray();
        Decodes(dir.Write("pal4.png", png), 5, 2, expected);
    }

    /// <summary>
    /// stb reduces 16-bit samples to 8 bits by keeping the high byte (value &gt;&gt; 8): 0x12FF becomes 0x12,
    /// where rounding (value / 257) would give 0x13, and 0xFF00 becomes 0xFF where rounding gives 0xFE.
    /// </summary>
    [Fact]
    public void SixteenBitPngKeepsTheHighByte()
    {
        using var dir = new TempDir();
        ushort[] gray = [0x12FF, 0xFF00, 0x00FF, 0x8080];
        var g = TinyPng.Encode(4, 1, 16, TinyPng.Gray, [TinyPng.Row16(gray)]);
        Decodes(dir.Write("g16.png", g), 4, 1, [0x12, 0x12, 0x12, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x80, 0x80, 0x80]);

        ushort[] rgb = [0x12FF, 0xFF00, 0x00FF, 0x8080, 0xFFFF, 0x0100];
        var c = TinyPng.Encode(2, 1, 16, TinyPng.Rgb, [TinyPng.Row16(rgb)]);
        Decodes(dir.Write("rgb16.png", c), 2, 1, [0x12, 0xFF, 0x00, 0x80, 0xFF, 0x01]);

        ushort[] rgba = [0x12FF, 0xFF00, 0x00FF, 0x0000];
        var a = TinyPng.Encode(1, 1, 16, TinyPng.Rgba, [TinyPng.Row16(rgba)]);
        Decodes(dir.Write("rgba16.png", a), 1, 1, [0x12, 0xFF, 0x00]);
    }

    [Fact]
    public void OneBitGrayScalesTo255()
    {
        using var dir = new TempDir();
        var png = TinyPng.Encode(9, 1, 1, TinyPng.Gray, [TinyPng.RowPacked(1, 1, 0, 1, 1, 0, 0, 0, 1, 1)]);
        var expected = new[] { 1, 0, 1, 1, 0, 0, 0, 1, 1 }.SelectMany(b => Enumerable.Repeat((byte)(255 * b), 3)).ToArray();
        Decodes(dir.Write("g1.png", png), 9, 1, expected);
    }
}
