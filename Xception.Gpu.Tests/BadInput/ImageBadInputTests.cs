using System.Buffers.Binary;
using System.Diagnostics;
using Xception.Gpu.Imaging;
using Xception.Gpu.Tests.IO;
using Xunit;
using static Xception.Gpu.Tests.BadInput.TestImages;

namespace Xception.Gpu.Tests.BadInput;

/// <summary>
/// Hostile image files, each built here: headers declaring huge or empty images (refused from the header,
/// fast and without allocating), files cut short in every format stb reads (refused, where stb alone would
/// fill the gap with zeros), a directory given as a file; and the valid images next to them still decoding
/// exactly as stb decodes them. Tests that change <see cref="ImageLoader.MaxPixels"/> restore it.
/// </summary>
public class ImageBadInputTests
{
    static ImageException Refused(string name, byte[] bytes)
    {
        var e = Assert.Throws<ImageException>(() => ImageLoader.Decode(name, bytes));
        Assert.DoesNotContain('\n', e.Message);
        Assert.Equal(name, e.Path);
        return e;
    }

    static string Bomb(string name, string size, long pixels, string part = "") =>
        $"image file '{name}' is {size} = {pixels:N0} pixels{part}, more than the limit of 89,478,485 (ImageLoader.MaxPixels); refused as a possible decompression bomb";

    public static TheoryData<string, byte[], string> Bombs()
    {
        var psd = Psd(1, 1);
        BinaryPrimitives.WriteInt32BigEndian(psd.AsSpan(14), 30000);
        BinaryPrimitives.WriteInt32BigEndian(psd.AsSpan(18), 30000);
        return new()
        {
            { "bomb.bmp", BmpHeader(20000, 20000), Bomb("bomb.bmp", "20000x20000", 400_000_000) },
            // Negative height: rows stored top down; the size is its magnitude.
            { "topdown.bmp", BmpHeader(20000, -20000), Bomb("topdown.bmp", "20000x20000", 400_000_000) },
            { "bomb.jpg", JpegHeader(26000, 26000), Bomb("bomb.jpg", "26000x26000", 676_000_000) },
            { "bomb.png", PngHeader(20000, 20000), Bomb("bomb.png", "20000x20000", 400_000_000) },
            { "huge.png", PngHeader(0x7FFFFFFF, 0xFFFFFFFF), Bomb("huge.png", "2147483647x4294967295", 2147483647L * 4294967295L) },
            { "bomb.gif", Gif(1, 1, 65535, 65535), Bomb("bomb.gif", "65535x65535", 65535L * 65535, " (its logical screen)") },
            { "bomb.tga", TgaHeader(65535, 65535), Bomb("bomb.tga", "65535x65535", 65535L * 65535) },
            { "bomb.psd", psd, Bomb("bomb.psd", "30000x30000", 900_000_000) },
        };
    }

    [Theory]
    [MemberData(nameof(Bombs))]
    public void BombIsRefusedFromItsHeaderFastAndWithLittleMemory(string name, byte[] bytes, string message)
    {
        var clock = Stopwatch.StartNew();
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Refused(name, bytes);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(message, e.Message);
        // Before the fix these took 2.4 to 4 GB and up to 55 s; the refusal itself is a few strings.
        Assert.True(allocated < 64 * 1024, $"refusing {name} allocated {allocated:N0} bytes");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"refusing {name} took {clock.Elapsed}");
    }

    [Fact]
    public void GifFrameLargerThanItsScreenIsMeasuredByTheFrame()
    {
        var gif = Gif(1, 1);
        BinaryPrimitives.WriteUInt16LittleEndian(gif.AsSpan(13 + 12 + 5), 60000);   // frame width
        BinaryPrimitives.WriteUInt16LittleEndian(gif.AsSpan(13 + 12 + 7), 60000);   // frame height
        Assert.Equal(Bomb("frame.gif", "60000x60000", 3_600_000_000, " (its first frame)"), Refused("frame.gif", gif).Message);
    }

    [Fact]
    public void ZeroAndNegativeSizesAreRefused()
    {
        const string Expected = "expected a width and height of at least 1";
        Assert.Equal($"image file 'w0.bmp' declares a BMP image of 0x5 pixels; {Expected}", Refused("w0.bmp", BmpHeader(0, 5)).Message);
        Assert.Equal($"image file 'neg.bmp' declares a BMP image of -3x5 pixels; {Expected}", Refused("neg.bmp", BmpHeader(-3, 5)).Message);
        Assert.Equal($"image file 'h0.png' declares a PNG image of 4x0 pixels; {Expected}", Refused("h0.png", PngHeader(4, 0)).Message);
        Assert.Equal($"image file 'w0.jpg' declares a JPEG image of 0x8 pixels; {Expected}", Refused("w0.jpg", JpegHeader(0, 8)).Message);
        Assert.Equal($"image file 'empty.gif' declares a GIF image of 0x0 pixels (its logical screen); {Expected}",
            Refused("empty.gif", Gif(1, 1, 0, 0)).Message);
        var psd = Psd(1, 1);
        BinaryPrimitives.WriteInt32BigEndian(psd.AsSpan(14), -1);
        Assert.Equal($"image file 'neg.psd' declares a PSD image of 1x-1 pixels; {Expected}", Refused("neg.psd", psd).Message);
    }

    [Fact]
    public void TruncatedBmpIsRefused()
    {
        var whole = Write("bmp", 5, 4);   // 24 bits: rows of 15 bytes padded to 16, from byte 54
        Assert.Equal(54, BinaryPrimitives.ReadInt32LittleEndian(whole.AsSpan(10)));
        Assert.Equal(54 + 4 * 16, whole.Length);
        Assert.Equal("image file 'cut.bmp' is a truncated BMP: its header declares 63 bytes of pixel data from byte 54 (5x4 at 24 bits a pixel), 40 are there",
            Refused("cut.bmp", whole[..94]).Message);
        Assert.Equal("image file 'header.bmp' is a truncated BMP: its header declares 63 bytes of pixel data from byte 54 (5x4 at 24 bits a pixel), 0 are there",
            Refused("header.bmp", whole[..54]).Message);
        Assert.Equal("image file 'short.bmp' is a truncated BMP: it ends inside its header", Refused("short.bmp", whole[..30]).Message);
        // The last row's padding is not pixel data; some writers leave it out.
        Assert.Equal(5, ImageLoader.Decode("nopad.bmp", whole[..^1]).Width);
    }

    [Fact]
    public void TruncatedGifIsRefused()
    {
        var whole = Gif(6, 5);
        Assert.Equal("image file 'data.gif' is a truncated GIF: its first frame's image data ends before its terminating block",
            Refused("data.gif", whole[..^4]).Message);
        // Image data complete, block terminator missing: stb would accept it, reading the missing byte as 0.
        Assert.Equal("image file 'noterm.gif' is a truncated GIF: its first frame's image data ends before its terminating block",
            Refused("noterm.gif", whole[..^2]).Message);
        Assert.Equal("image file 'palette.gif' is a truncated GIF: it ends before its first frame", Refused("palette.gif", whole[..20]).Message);
        Assert.Equal("image file 'header.gif' is a truncated GIF: it ends before its first frame", Refused("header.gif", whole[..13]).Message);
        // The trailer after the first frame is not needed: stb stops at the first frame.
        Assert.Equal(6, ImageLoader.Decode("notrailer.gif", whole[..^1]).Width);
    }

    [Fact]
    public void TruncatedTgaIsRefused()
    {
        // TGA stores blue, green, red; the pattern's bytes read as BGR come back swapped to RGB.
        byte[] raw = [.. TgaHeader(3, 2), .. Pattern(3, 2)];
        var bgr = Pattern(3, 2);
        for (int i = 0; i < bgr.Length; i += 3) (bgr[i], bgr[i + 2]) = (bgr[i + 2], bgr[i]);
        Assert.Equal(bgr, ImageLoader.Decode("raw.tga", raw).Pixels);
        Assert.Equal("image file 'raw.tga' is a truncated TGA: its header declares 18 bytes of pixel data from byte 18 (3x2 at 24 bits a pixel), 17 are there",
            Refused("raw.tga", raw[..^1]).Message);
        Assert.Equal("image file 'head.tga' is a truncated TGA: it ends inside its header", Refused("head.tga", raw[..17]).Message);

        // Run-length coded, as stb_image_write writes it: two packets of 3 raw pixels each.
        var rle = Write("tga", 3, 2);
        Assert.Equal(10, rle[2]);
        Assert.Equal(Pattern(3, 2), ImageLoader.Decode("rle.tga", rle).Pixels);
        Assert.Equal("image file 'rle.tga' is a truncated TGA: its run-length data ends after 3 of its 6 pixels",
            Refused("rle.tga", rle[..^1]).Message);
    }

    [Fact]
    public void TruncatedPsdIsRefused()
    {
        var whole = Psd(3, 2);   // 26-byte header, three empty sections (12), compression (2), 18 bytes of samples
        Assert.Equal(58, whole.Length);
        Assert.Equal("image file 'cut.psd' is a truncated PSD: its image data needs 18 bytes from byte 40, 17 are there",
            Refused("cut.psd", whole[..^1]).Message);
        Assert.Equal("image file 'head.psd' is a truncated PSD: it ends before its image data", Refused("head.psd", whole[..30]).Message);
    }

    public static TheoryData<string> Formats() => ["png", "jpg", "bmp", "tga", "gif", "psd"];

    static byte[] Valid(string format) => format switch
    {
        "gif" => Gif(7, 5),
        "psd" => Psd(7, 5),
        _ => Write(format, 7, 5),
    };

    [Theory]
    [MemberData(nameof(Formats))]
    public void ValidImagesDecodeExactlyAsStbDecodesThem(string format)
    {
        var bytes = Valid(format);
        var img = ImageLoader.Decode($"ok.{format}", bytes);
        var stb = StbImageSharp.ImageResult.FromMemory(bytes, StbImageSharp.ColorComponents.RedGreenBlue);
        Assert.Equal((stb.Width, stb.Height), (img.Width, img.Height));
        Assert.Equal((7, 5), (img.Width, img.Height));
        Assert.Equal(stb.Data, img.Pixels);
        // And the pixels are the ones written (JPEG aside, which is lossy).
        if (format == "gif")
            for (int i = 0; i < 35; i++)
                Assert.Equal(GifPalette.AsSpan(3 * GifIndex(i), 3).ToArray(), img.Pixels[(3 * i)..(3 * i + 3)]);
        else if (format != "jpg")
            Assert.Equal(Pattern(7, 5), img.Pixels);
    }

    [Fact]
    public void MaxPixelsIsPilsDefaultAndWorksBothWays()
    {
        Assert.Equal(89_478_485, ImageLoader.MaxPixels);
        Assert.Equal(1024 * 1024 * 1024 / 4 / 3, ImageLoader.DefaultMaxPixels);
        var png = Write("png", 4, 3);
        try
        {
            ImageLoader.MaxPixels = 11;
            Assert.Equal("image file 'p.png' is 4x3 = 12 pixels, more than the limit of 11 (ImageLoader.MaxPixels); refused as a possible decompression bomb",
                Refused("p.png", png).Message);
            ImageLoader.MaxPixels = 12;
            Assert.Equal(4, ImageLoader.Decode("p.png", png).Width);
            // Raised, a header that the default refuses passes the size check and reaches the truncation check.
            ImageLoader.MaxPixels = 400_000_000;
            Assert.Equal("image file 'b.bmp' is a truncated BMP: its header declares 1200000000 bytes of pixel data from byte 54 (20000x20000 at 24 bits a pixel), 0 are there",
                Refused("b.bmp", BmpHeader(20000, 20000)).Message);
            var e = Assert.Throws<XceptionException>(() => ImageLoader.MaxPixels = 0);
            Assert.Equal("ImageLoader.MaxPixels must be at least 1 pixel, got 0", e.Message);
            Assert.Equal(400_000_000, ImageLoader.MaxPixels);   // a refused value changes nothing
        }
        finally { ImageLoader.MaxPixels = ImageLoader.DefaultMaxPixels; }
    }

    [Fact]
    public void DirectoryIsNotAnImageFile()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<ImageException>(() => ImageLoader.Load(dir.Path));
        Assert.Equal($"'{dir.Path}' is a directory, expected an image file", e.Message);
        Assert.Equal(dir.Path, e.Path);
    }
}
