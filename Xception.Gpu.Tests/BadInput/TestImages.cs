using System.Buffers.Binary;
using System.IO.Compression;
using StbImageWriteSharp;
using Xception.Gpu.Tests.Imaging;

namespace Xception.Gpu.Tests.BadInput;

/// <summary>
/// Small valid images of every format stb reads, made at test time, and the raw header pieces the hostile
/// files are built from. PNG, JPEG, BMP and TGA come from stb_image_write; GIF and PSD, which it cannot
/// write, are encoded here by hand (both are simple enough for a test to spell out).
/// </summary>
internal static class TestImages
{
    /// <summary>Distinct RGB values per pixel, so a misplaced pixel shows.</summary>
    public static byte[] Pattern(int w, int h)
    {
        var a = new byte[w * h * 3];
        for (int i = 0; i < a.Length; i++) a[i] = (byte)(i * 37 % 251);
        return a;
    }

    public static byte[] Write(string format, int w, int h)
    {
        using var ms = new MemoryStream();
        var writer = new ImageWriter();
        var pixels = Pattern(w, h);
        switch (format)
        {
            case "png": writer.WritePng(pixels, w, h, ColorComponents.RedGreenBlue, ms); break;
            case "bmp": writer.WriteBmp(pixels, w, h, ColorComponents.RedGreenBlue, ms); break;
            case "tga": writer.WriteTga(pixels, w, h, ColorComponents.RedGreenBlue, ms); break;
            case "jpg": writer.WriteJpg(pixels, w, h, ColorComponents.RedGreenBlue, ms, 90); break;
            default: throw new ArgumentException(format);
        }
        return ms.ToArray();
    }

    /// <summary>The 4-colour palette the hand-made GIFs use.</summary>
    public static readonly byte[] GifPalette = [255, 0, 0, 0, 255, 0, 0, 0, 255, 250, 250, 250];

    /// <summary>
    /// A GIF89a with a 4-colour global palette and one frame covering the screen; pixel i has palette index
    /// <c>i * 7 / 3 % 4</c>. The LZW data uses 3-bit codes only: a clear code before every two pixels keeps
    /// the decoder's table from growing to the point where it would switch to 4-bit codes (GIF89a, appendix F),
    /// which is valid, if wasteful, LZW.
    /// </summary>
    public static byte[] Gif(int w, int h, int screenW = -1, int screenH = -1)
    {
        var g = new List<byte>();
        g.AddRange("GIF89a"u8.ToArray());
        AddU16(g, screenW < 0 ? w : screenW);
        AddU16(g, screenH < 0 ? h : screenH);
        g.AddRange([0x81, 0, 0]);          // global table of 2^(1+1) = 4 entries; background 0; no aspect ratio
        g.AddRange(GifPalette);
        g.Add(0x2C);                         // image descriptor at (0, 0), no local table, not interlaced
        AddU16(g, 0); AddU16(g, 0); AddU16(g, w); AddU16(g, h);
        g.Add(0);
        g.Add(2);                            // LZW minimum code size: clear = 4, end = 5
        var bits = new BitPacker();
        for (int i = 0; i < w * h; i++)
        {
            if (i % 2 == 0) bits.Put(4, 3);
            bits.Put(GifIndex(i), 3);
        }
        bits.Put(5, 3);
        var data = bits.ToArray();
        for (int at = 0; at < data.Length; at += 255)
        {
            int n = Math.Min(255, data.Length - at);
            g.Add((byte)n);
            g.AddRange(data.AsSpan(at, n).ToArray());
        }
        g.Add(0);                            // block terminator
        g.Add(0x3B);                         // trailer
        return [.. g];
    }

    public static int GifIndex(int pixel) => pixel * 7 / 3 % 4;

    /// <summary>A PSD (version 1, RGB, 8 bits, no colour data, resources or layers) with raw planar data.</summary>
    public static byte[] Psd(int w, int h)
    {
        var p = new List<byte>();
        p.AddRange("8BPS"u8.ToArray());
        p.AddRange([0, 1, 0, 0, 0, 0, 0, 0, 0, 3]);   // version 1, 6 reserved bytes, 3 channels
        AddU32Be(p, h); AddU32Be(p, w);
        p.AddRange([0, 8, 0, 3]);                       // depth 8, colour mode RGB
        AddU32Be(p, 0); AddU32Be(p, 0); AddU32Be(p, 0); // three empty sections
        p.AddRange([0, 0]);                             // raw
        var rgb = Pattern(w, h);
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < w * h; i++) p.Add(rgb[3 * i + c]);
        return [.. p];
    }

    /// <summary>A 54-byte BMP header (BITMAPINFOHEADER, 24 bits, uncompressed) and no pixels.</summary>
    public static byte[] BmpHeader(int w, int h, int bits = 24)
    {
        var b = new byte[54];
        b[0] = (byte)'B'; b[1] = (byte)'M';
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(2), 54);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(10), 54);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(14), 40);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(18), w);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(22), h);
        BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(26), 1);
        BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(28), (short)bits);
        return b;
    }

    /// <summary>SOI, a baseline frame header for a w x h three-component image, and EOI: no tables, no scan.</summary>
    public static byte[] JpegHeader(int w, int h) =>
        [0xFF, 0xD8, 0xFF, 0xC0, 0, 17, 8, (byte)(h >> 8), (byte)h, (byte)(w >> 8), (byte)w, 3,
         1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, 0xFF, 0xD9];

    /// <summary>The PNG signature, an IHDR for a w x h RGB image, and IEND (CRCs correct, no image data).</summary>
    public static byte[] PngHeader(uint w, uint h)
    {
        var ihdr = new byte[17];
        "IHDR"u8.CopyTo(ihdr);
        BinaryPrimitives.WriteUInt32BigEndian(ihdr.AsSpan(4), w);
        BinaryPrimitives.WriteUInt32BigEndian(ihdr.AsSpan(8), h);
        ihdr[12] = 8; ihdr[13] = 2;
        var png = new List<byte> { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13 };
        png.AddRange(ihdr);
        AddU32Be(png, (int)TinyPng.Crc32(ihdr));
        png.AddRange([0, 0, 0, 0, .. "IEND"u8.ToArray()]);
        AddU32Be(png, (int)TinyPng.Crc32("IEND"u8));
        return [.. png];
    }

    /// <summary>
    /// A PNG from its parts: an optional CgBI chunk (Apple's, which makes stb read the data as raw deflate), IHDR with
    /// the given fields, an optional PLTE, <paramref name="compressed"/> split into IDAT chunks of at most
    /// <paramref name="idatSize"/> bytes, IEND; CRCs correct.
    /// </summary>
    public static byte[] PngOf(int w, int h, int depth, int color, bool interlaced, byte[] compressed,
        byte[]? palette = null, int idatSize = 1 << 20, bool cgbi = false)
    {
        var png = new List<byte> { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A };
        if (cgbi) PngChunk(png, "CgBI", [0x50, 0x00, 0x20, 0x06]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, w);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), h);
        ihdr[8] = (byte)depth; ihdr[9] = (byte)color; ihdr[12] = (byte)(interlaced ? 1 : 0);
        PngChunk(png, "IHDR", ihdr);
        if (palette is not null) PngChunk(png, "PLTE", palette);
        for (int at = 0; at < compressed.Length; at += idatSize)
            PngChunk(png, "IDAT", compressed.AsSpan(at, Math.Min(idatSize, compressed.Length - at)));
        PngChunk(png, "IEND", []);
        return [.. png];
    }

    static void PngChunk(List<byte> png, string type, ReadOnlySpan<byte> data)
    {
        AddU32Be(png, data.Length);
        byte[] typeAndData = [.. System.Text.Encoding.ASCII.GetBytes(type), .. data];
        png.AddRange(typeAndData);
        AddU32Be(png, (int)TinyPng.Crc32(typeAndData));
    }

    /// <summary>
    /// The data a PNG's IDAT chunks inflate to: for each row a filter byte (0, none) and the row's samples packed
    /// high bits first, big-endian at 16 bits, rows padded to a byte. Interlaced, the seven Adam7 passes in turn,
    /// each over the pixels it takes (columns x0, x0 + dx, ..., rows y0, y0 + dy, ...); an empty pass has no rows.
    /// <paramref name="sample"/> gives the value of channel c at pixel (x, y).
    /// </summary>
    public static byte[] PngRows(int w, int h, int depth, int channels, bool interlaced, Func<int, int, int, int> sample)
    {
        (int X0, int Y0, int Dx, int Dy)[] passes = interlaced
            ? [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
            : [(0, 0, 1, 1)];
        var raw = new List<byte>();
        foreach (var (x0, y0, dx, dy) in passes)
            for (int y = y0; y < h; y += dy)
            {
                if (x0 >= w) break;
                raw.Add(0);
                var bits = new BitPacker();
                for (int x = x0; x < w; x += dx)
                    for (int c = 0; c < channels; c++)
                        bits.PutHighFirst(sample(x, y, c), depth);
                raw.AddRange(bits.ToArray());
            }
        return [.. raw];
    }

    public static byte[] Zlib(ReadOnlySpan<byte> raw, CompressionLevel level = CompressionLevel.Optimal)
    {
        var z = new MemoryStream();
        using (var zs = new ZLibStream(z, level, leaveOpen: true)) zs.Write(raw);
        return z.ToArray();
    }

    /// <summary>An 18-byte TGA header (uncompressed true colour, 24 bits, rows top down) and no pixels.</summary>
    public static byte[] TgaHeader(int w, int h) =>
        [0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, (byte)w, (byte)(w >> 8), (byte)h, (byte)(h >> 8), 24, 0x20];

    static void AddU16(List<byte> l, int v) { l.Add((byte)v); l.Add((byte)(v >> 8)); }
    static void AddU32Be(List<byte> l, int v) { l.Add((byte)(v >> 24)); l.Add((byte)(v >> 16)); l.Add((byte)(v >> 8)); l.Add((byte)v); }

    /// <summary>Bits into bytes, in GIF's and deflate's order (<see cref="Put"/>) or PNG's (<see cref="PutHighFirst"/>).</summary>
    internal sealed class BitPacker
    {
        readonly List<byte> bytes = [];
        int used;   // bits used in the last byte

        /// <summary>
        /// PNG's bit order: the value's high bit first, filling each byte from its high bit (16-bit samples come
        /// out big-endian). A packer is filled in one order only: this one, or GIF's and deflate's below.
        /// </summary>
        public void PutHighFirst(int value, int width)
        {
            for (int i = width - 1; i >= 0; i--)
            {
                if (used == 0) bytes.Add(0);
                bytes[^1] |= (byte)(((value >> i) & 1) << (7 - used));
                used = (used + 1) % 8;
            }
        }

        /// <summary>A deflate Huffman code: bytes fill from their low bit, but a code goes in from its high bit (RFC 1951, 3.1.1).</summary>
        public void PutHuffman(int code, int width)
        {
            for (int i = width - 1; i >= 0; i--) Put((code >> i) & 1, 1);
        }

        /// <summary>GIF's and deflate's bit order: the value's low bit first, filling each byte from its low bit.</summary>
        public void Put(int code, int width)
        {
            for (int i = 0; i < width; i++)
            {
                if (used == 0) bytes.Add(0);
                bytes[^1] |= (byte)(((code >> i) & 1) << used);
                used = (used + 1) % 8;
            }
        }
        public byte[] ToArray() => [.. bytes];
    }
}
