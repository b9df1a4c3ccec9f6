using StbImageWriteSharp;
using Xception.Gpu.Imaging;
using Xception.Gpu.Tests.IO;
using Xunit;

namespace Xception.Gpu.Tests.Imaging;

/// <summary>
/// Every way a file can fail to load gives an <see cref="ImageException"/> with one line naming the file.
/// The decoding failures live in this one class because stb keeps its failure reason in a static field
/// (see <see cref="ImageLoader.Decode"/>) and xunit runs the tests of one class one at a time.
/// </summary>
public class ImageErrorTests
{
    static ImageException Fails(string path)
    {
        var e = Assert.Throws<ImageException>(() => ImageLoader.Load(path));
        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains($"'{path}'", e.Message);
        Assert.Equal(path, e.Path);
        return e;
    }

    [Fact]
    public void MissingFile()
    {
        using var dir = new TempDir();
        var p = dir["cat.jpg"];
        Assert.Equal($"image file '{p}' not found", Fails(p).Message);
        var q = Path.Combine(dir.Path, "no-such-dir", "cat.jpg");
        Assert.Equal($"image file '{q}' not found", Fails(q).Message);
    }

    [Fact]
    public void EmptyFile()
    {
        using var dir = new TempDir();
        var p = dir.Write("empty.png", []);
        Assert.Equal($"image file '{p}' is empty (0 bytes)", Fails(p).Message);
    }

    [Fact]
    public void TextFileNamedJpg()
    {
        using var dir = new TempDir();
        var p = dir.Write("notes.jpg", "this is not a picture\nsecond line\n"u8.ToArray());
        Assert.Equal($"image file '{p}' is not an image or is corrupt (stb: unknown image type); expected JPEG, PNG, BMP, GIF, TGA or PSD",
            Fails(p).Message);
    }

    const string Expected = "expected JPEG, PNG, BMP, GIF, TGA or PSD";

    static byte[] NoisePng(int size)
    {
        var pixels = new byte[size * size * 3];
        new Random(5).NextBytes(pixels);   // noise does not compress, so the image data is most of the file
        using var ms = new MemoryStream();
        new ImageWriter().WritePng(pixels, size, size, ColorComponents.RedGreenBlue, ms);
        return ms.ToArray();
    }

    static byte[] NoiseJpeg(int size)
    {
        var pixels = new byte[size * size * 3];
        new Random(6).NextBytes(pixels);
        using var ms = new MemoryStream();
        new ImageWriter().WriteJpg(pixels, size, size, ColorComponents.RedGreenBlue, ms, 90);
        return ms.ToArray();
    }

    [Fact]
    public void TruncatedPng()
    {
        using var dir = new TempDir();
        var whole = NoisePng(64);
        int cut = whole.Length / 2;
        // signature (8) + IHDR (25): the image data chunk starts at byte 33 and runs to 12 bytes before the end.
        Assert.Equal("IDAT"u8.ToArray(), whole[37..41]);
        int idat = whole.Length - 33 - 12;
        var p = dir.Write("half.png", whole[..cut]);
        Assert.Equal($"image file '{p}' is a truncated PNG: chunk 'IDAT' at byte 33 needs {idat} bytes, {cut - 33} are left", Fails(p).Message);

        var q = dir.Write("no-iend.png", whole[..^12]);
        Assert.Equal($"image file '{q}' is a truncated PNG: it ends before the IEND chunk", Fails(q).Message);
    }

    [Fact]
    public void TruncatedJpeg()
    {
        // stb alone decodes this without an error, filling the missing blocks with grey.
        using var dir = new TempDir();
        var whole = NoiseJpeg(32);
        foreach (int cut in new[] { 200, whole.Length / 2, whole.Length - 2 })
        {
            var p = dir.Write($"cut{cut}.jpg", whole[..cut]);
            Assert.Equal($"image file '{p}' is a truncated JPEG: it ends before the end-of-image marker", Fails(p).Message);
        }
    }

    [Fact]
    public void JpegWithBytesAfterTheEndStillLoads()
    {
        // Cameras and phones append data after the end-of-image marker; PIL ignores it, and so must we.
        using var dir = new TempDir();
        var p = dir.Write("trailer.jpg", [.. NoiseJpeg(16), .. "trailing metadata"u8.ToArray()]);
        Assert.Equal(16, ImageLoader.Load(p).Width);
    }

    [Fact]
    public void UnknownCriticalPngChunk()
    {
        using var dir = new TempDir();
        var png = TinyPng.Encode(1, 1, 8, TinyPng.Gray, [[7]], extraChunk: "ABCD");
        var p = dir.Write("chunk.png", png);
        Assert.Equal($"image file '{p}' is not an image or is corrupt (stb: unknown critical PNG chunk 'ABCD'); {Expected}", Fails(p).Message);
        // An ancillary chunk (lower-case first letter) is skipped, as the PNG specification asks.
        Assert.Equal(7, ImageLoader.Load(dir.Write("ok.png", TinyPng.Encode(1, 1, 8, TinyPng.Gray, [[7]], extraChunk: "abCD")))[0, 0, 1]);
    }
}
