using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Compression;
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
        // Decoding such a file would take 2.4 to 4 GB and up to 55 s; the refusal itself is a few strings.
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
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => ImageLoader.MaxPixels = 0);
            Assert.Equal("ImageLoader.MaxPixels must be at least 1 pixel, got 0", e.Message);
            Assert.Equal(400_000_000, ImageLoader.MaxPixels);   // a refused value changes nothing
        }
        finally { ImageLoader.MaxPixels = ImageLoader.DefaultMaxPixels; }
    }

    // ---- PNG data that inflates past what its header needs (PngInflateCheck) ----

    /// <summary>64 MB of zeros as zlib at its smallest: about 64 KB that inflates about 1000-fold.</summary>
    static readonly Lazy<byte[]> ZerosBomb = new(() =>
    {
        var z = new MemoryStream();
        var zeros = new byte[1 << 20];
        using (var zs = new ZLibStream(z, CompressionLevel.SmallestSize, leaveOpen: true))
            for (int i = 0; i < 64; i++) zs.Write(zeros);
        return z.ToArray();
    });

    static string InflateBomb(string name, long allowed, long needed, string size = "1000x1000") =>
        $"image file '{name}' is a PNG whose compressed image data inflates to more than {allowed:N0} bytes, where its {size} header needs {needed:N0}; refused as a possible decompression bomb";

    public static TheoryData<string> InflateBombs() => ["plain.png", "interlaced.png", "cgbi.png"];

    [Theory]
    [MemberData(nameof(InflateBombs))]
    public void PngWhoseDataInflatesFarPastItsHeaderIsRefusedFastAndWithLittleMemory(string name)
    {
        var zlib = ZerosBomb.Value;
        Assert.InRange(zlib.Length, 1, 256 * 1024);
        // 1000x1000 8-bit grayscale: rows of a filter byte and 1000 samples, 1,001,000 bytes; interlaced, the seven
        // Adam7 passes of 125x125, 125x125, 250x125, 250x250, 500x250, 500x500 and 1000x500 pixels, each row with
        // its filter byte: 15,750 + 15,750 + 31,375 + 62,750 + 125,250 + 250,500 + 500,500 = 1,001,875. The data
        // may inflate to twice that; these inflate to 64 MB.
        var (png, needed) = name switch
        {
            "plain.png" => (PngOf(1000, 1000, 8, 0, false, zlib, idatSize: 8192), 1_001_000L),
            "interlaced.png" => (PngOf(1000, 1000, 8, 0, true, zlib), 1_001_875L),
            // With Apple's CgBI chunk stb reads raw deflate: the zlib data without its 2-byte header and 4-byte trailer.
            _ => (PngOf(1000, 1000, 8, 0, false, zlib[2..^4], cgbi: true), 1_001_000L),
        };
        var clock = Stopwatch.StartNew();
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Refused(name, png);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(InflateBomb(name, 2 * needed, needed), e.Message);
        // The refusal comes before stb runs, so stb's native buffers (which would have grown to 64 MB here, and up
        // to 4 GB for a larger bomb) are never allocated; native memory cannot be measured simply, but the managed
        // side shows the check itself inflates through one small reused buffer rather than holding the output.
        Assert.True(allocated < 2 * 1024 * 1024, $"refusing {name} allocated {allocated:N0} bytes");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"refusing {name} took {clock.Elapsed}");
    }

    [Fact]
    public void StbAloneInflatesThePngBombWhole()
    {
        // The hole the check closes: stb takes the bomb without complaint, having inflated all 64 MB natively.
        var png = PngOf(1000, 1000, 8, 0, false, ZerosBomb.Value);
        var stb = StbImageSharp.ImageResult.FromMemory(png, StbImageSharp.ColorComponents.RedGreenBlue);
        Assert.Equal((1000, 1000), (stb.Width, stb.Height));
    }

    /// <summary>
    /// A deflate stream that stb inflates but zlib refuses: one dynamic-Huffman block whose literal/length code is
    /// incomplete (three codes of 2 bits: literal 0, end of block, length 258), which stb's Huffman builder allows
    /// (it only refuses over-full codes) and zlib does not. The data is a zero and then <paramref name="copies"/>
    /// copies of 258 bytes at distance 1: that many times 258 zeros, from 3 bits each.
    /// </summary>
    static byte[] IncompleteHuffmanZlib(int copies)
    {
        var bits = new BitPacker();
        bits.Put(1, 1); bits.Put(2, 2);           // final block, dynamic Huffman
        bits.Put(286 - 257, 5);                   // HLIT: literal/length codes 0..285
        bits.Put(0, 5);                           // HDIST: one distance code
        bits.Put(18 - 4, 4);                      // HCLEN: code-length code lengths for the first 18 in the order below
        // Code-length code: 18 (a run of zeros) of 1 bit, 1 and 2 of 2 bits; lengths given in the order
        // 16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1 (RFC 1951, 3.2.7). Canonical codes:
        // 18 -> 0, 1 -> 10, 2 -> 11.
        int[] order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1];
        foreach (int symbol in order) bits.Put(symbol switch { 18 => 1, 1 or 2 => 2, _ => 0 }, 3);
        void Length2() => bits.PutHuffman(0b11, 2);
        void Zeros(int n) { bits.PutHuffman(0, 1); bits.Put(n - 11, 7); }   // code 18: 11 to 138 zeros
        Length2();                  // literal 0
        Zeros(138); Zeros(117);     // literals 1..255
        Length2();                  // 256, end of block
        Zeros(28);                  // 257..284
        Length2();                  // 285, length 258
        bits.PutHuffman(0b10, 2);   // distance code 0 (distance 1): 1 bit
        // Literal/length codes: 0 -> 00, 256 -> 01, 285 -> 10 (11 unused); distance 0 -> 0.
        bits.PutHuffman(0b00, 2);
        for (int i = 0; i < copies; i++) { bits.PutHuffman(0b10, 2); bits.PutHuffman(0, 1); }
        bits.PutHuffman(0b01, 2);
        // zlib header 78 01 (deflate, 32K window, a multiple of 31); stb does not check the Adler-32 trailer.
        return [0x78, 0x01, .. bits.ToArray(), 0, 0, 0, 0];
    }

    [Fact]
    public void PngDataOnlyStbCanInflateIsRefusedAsCorrupt()
    {
        // Enough copies for 1000x1000 grayscale (1 + 3,880 x 258 = 1,001,041 bytes): stb decodes it, a black image.
        var small = PngOf(1000, 1000, 8, 0, false, IncompleteHuffmanZlib(3880));
        var stb = StbImageSharp.ImageResult.FromMemory(small, StbImageSharp.ColorComponents.RedGreenBlue);
        Assert.Equal((1000, 1000), (stb.Width, stb.Height));
        Assert.All(stb.Data, b => Assert.Equal(0, b));
        // Data zlib cannot inflate cannot be counted, so it is refused: built this way, a bomb of 64 MB (here
        // 11 KB of data) would otherwise reach stb. PIL, which inflates with zlib, refuses it too.
        foreach (var (name, png) in new[] { ("small.png", small), ("bomb.png", PngOf(1000, 1000, 8, 0, false, IncompleteHuffmanZlib(260_000))) })
        {
            var clock = Stopwatch.StartNew();
            var e = Refused(name, png);
            Assert.StartsWith($"image file '{name}' is a PNG whose compressed image data is corrupt after 0 of the 1,001,000 bytes its 1000x1000 header needs (zlib: ", e.Message);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"refusing {name} took {clock.Elapsed}");
        }
    }

    [Fact]
    public void PngDataCorruptForStbToo()
    {
        // A stored block whose length's complement is wrong: both inflaters refuse it; the zlib reason is given.
        byte[] zlib = [0x78, 0x01, 0x01, 0x05, 0x00, 0x00, 0x00, 1, 2, 3, 4, 5, 0, 0, 0, 0];
        var e = Refused("stored.png", PngOf(2, 2, 8, 0, false, zlib));
        Assert.StartsWith("image file 'stored.png' is a PNG whose compressed image data is corrupt after 0 of the 6 bytes its 2x2 header needs (zlib: ", e.Message);
    }

    /// <summary>Every colour type with every bit depth PNG allows for it.</summary>
    public static TheoryData<int, int> PngKinds() => new()
    {
        { 0, 1 }, { 0, 2 }, { 0, 4 }, { 0, 8 }, { 0, 16 },
        { 2, 8 }, { 2, 16 },
        { 3, 1 }, { 3, 2 }, { 3, 4 }, { 3, 8 },
        { 4, 8 }, { 4, 16 },
        { 6, 8 }, { 6, 16 },
    };

    [Theory]
    [MemberData(nameof(PngKinds))]
    public void ValidPngsOfEveryKindLoadInterlacedOrNotAndTheBoundIsExact(int color, int depth)
    {
        int channels = color switch { 0 => 1, 2 => 3, 3 => 1, 4 => 2, _ => 4 };
        int max = (1 << depth) - 1;
        byte[]? palette = null;
        if (color == 3)
        {
            max = Math.Min(max, 255);
            palette = new byte[3 * (max + 1)];
            for (int i = 0; i < palette.Length; i++) palette[i] = (byte)(i * 53 % 256);
        }
        int Sample(int x, int y, int c) => (x * 7 + y * 13 + c * 29 + x * y) % (max + 1);
        // Sizes where Adam7 passes are empty (1x1: only the first), partial (3x5, 9x9) or all full (17x10).
        foreach (var (w, h) in new[] { (1, 1), (3, 5), (9, 9), (17, 10) })
        {
            var plainRows = PngRows(w, h, depth, channels, false, Sample);
            var interlacedRows = PngRows(w, h, depth, channels, true, Sample);
            var plain = ImageLoader.Decode("plain.png", PngOf(w, h, depth, color, false, Zlib(plainRows), palette));
            var interlaced = ImageLoader.Decode("interlaced.png", PngOf(w, h, depth, color, true, Zlib(interlacedRows), palette));
            Assert.Equal((w, h), (plain.Width, plain.Height));
            Assert.Equal(plain.Pixels, interlaced.Pixels);

            // The bound is exact: the header's need (what the rows above take) plus the allowance, 64 KB for images
            // this small, of bytes after the rows loads; one byte more is refused, naming that need.
            foreach (var (interlace, rows) in new[] { (false, plainRows), (true, interlacedRows) })
            {
                long allowed = rows.Length + 64 * 1024;
                var padded = new byte[allowed + 1];
                rows.CopyTo(padded, 0);
                var atLimit = PngOf(w, h, depth, color, interlace, Zlib(padded.AsSpan(0, (int)allowed)), palette);
                Assert.Equal(plain.Pixels, ImageLoader.Decode("limit.png", atLimit).Pixels);
                var over = PngOf(w, h, depth, color, interlace, Zlib(padded), palette);
                Assert.Equal(InflateBomb("over.png", allowed, rows.Length, $"{w}x{h}"), Refused("over.png", over).Message);
            }
        }
    }

    [Fact]
    public void LargerValidPngsLoadAndTheirAllowanceIsTheirNeed()
    {
        // Above 64 KB the allowance is the need itself: data of twice the need loads, one byte more does not.
        foreach (bool interlace in new[] { false, true })
        {
            var rows = PngRows(300, 299, 8, 3, interlace, (x, y, c) => (x * 3 + y * 5 + c * 7) % 256);
            var padded = new byte[2 * rows.Length + 1];
            rows.CopyTo(padded, 0);
            var ok = ImageLoader.Decode("twice.png", PngOf(300, 299, 8, 2, interlace, Zlib(padded.AsSpan(0, 2 * rows.Length))));
            Assert.Equal((300, 299), (ok.Width, ok.Height));
            Assert.Equal(InflateBomb("over.png", 2L * rows.Length, rows.Length, "300x299"),
                Refused("over.png", PngOf(300, 299, 8, 2, interlace, Zlib(padded))).Message);
        }
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
