using System.Buffers.Binary;

namespace Xception.Gpu.Imaging;

/// <summary>The formats stb decodes, in the order stb tries them.</summary>
internal enum ImageFormat { Unknown, Jpeg, Png, Bmp, Gif, Psd, Tga }

/// <summary>
/// Reads the format and the declared size of an image from its header alone, so that a file declaring a huge
/// image can be refused before stb allocates its buffers (stb allocates them from the header, before it knows
/// whether the file holds that much data). This is parsed here rather than with stb's own <c>ImageInfo</c>:
/// that call shares stb's static failure reason, reports nothing for a JPEG whose header stb dislikes, and
/// does not give the first GIF frame; a few dozen bytes read by hand are easier to trust.
/// </summary>
internal static class ImageHeader
{
    /// <summary>A declared size; <see cref="Width"/> and <see cref="Height"/> as the file states them (signed).</summary>
    public readonly record struct Size(ImageFormat Format, long Width, long Height, string? Part = null)
    {
        public long Pixels => Width * Height;
    }

    /// <summary>
    /// The format stb will take the file for. The tests and their order mirror stb_image's
    /// <c>stbi__load_main</c> (JPEG, PNG, BMP, GIF, PSD, TGA): a file that fails one test falls through to the
    /// next, so the TGA test, which is weak, must be exactly stb's, or a file could reach stb's TGA decoder
    /// without its size being checked. Bytes past the end read as 0, as stb's reader returns them.
    /// </summary>
    public static ImageFormat Detect(ReadOnlySpan<byte> b)
    {
        if (JpegStart(b) >= 0) return ImageFormat.Jpeg;
        if (b.Length >= 8 && b[..8].SequenceEqual((ReadOnlySpan<byte>)[0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])) return ImageFormat.Png;
        if (At(b, 0) == 'B' && At(b, 1) == 'M' && U32Le(b, 14) is 12 or 40 or 56 or 108 or 124) return ImageFormat.Bmp;
        if (b.Length >= 6 && b[..4].SequenceEqual("GIF8"u8) && b[4] is (byte)'7' or (byte)'9' && b[5] == 'a') return ImageFormat.Gif;
        if (b.Length >= 4 && b[..4].SequenceEqual("8BPS"u8)) return ImageFormat.Psd;
        if (IsTga(b)) return ImageFormat.Tga;
        return ImageFormat.Unknown;
    }

    /// <summary>
    /// The size the header declares, or null where the header cannot be read: an unknown format, or a header cut
    /// short or malformed so that stb refuses the file before allocating anything (then the truncation check
    /// or stb gives the reason). For a GIF, the logical screen, and the first frame as a second size if larger.
    /// </summary>
    public static Size? Read(ReadOnlySpan<byte> b) => Detect(b) switch
    {
        ImageFormat.Jpeg => Jpeg(b),
        ImageFormat.Png => Png(b),
        ImageFormat.Bmp => Bmp(b),
        ImageFormat.Gif => Gif(b),
        ImageFormat.Psd => b.Length >= 26 ? new Size(ImageFormat.Psd, BinaryPrimitives.ReadInt32BigEndian(b[18..]), BinaryPrimitives.ReadInt32BigEndian(b[14..])) : null,
        ImageFormat.Tga => new Size(ImageFormat.Tga, U16Le(b, 12), U16Le(b, 14)),
        _ => null,
    };

    /// <summary>
    /// Where the bytes after a JPEG's start-of-image marker begin, or -1. stb's marker reader skips any number
    /// of 0xFF fill bytes before the marker code, so FF FF D8 starts a JPEG as well as FF D8.
    /// </summary>
    public static int JpegStart(ReadOnlySpan<byte> b)
    {
        if (b.Length < 2 || b[0] != 0xFF) return -1;
        int at = 1;
        while (at < b.Length && b[at] == 0xFF) at++;
        return at < b.Length && b[at] == 0xD8 ? at + 1 : -1;
    }

    /// <summary>
    /// The first frame header (SOFn) before the first scan. Like stb, bytes between segments that are not a
    /// marker are skipped; a marker stb does not accept before the frame header ends the search (stb refuses
    /// the file there, before allocating).
    /// </summary>
    static Size? Jpeg(ReadOnlySpan<byte> b)
    {
        int at = JpegStart(b);
        while (at < b.Length)
        {
            if (b[at] != 0xFF) { at++; continue; }
            while (at < b.Length && b[at] == 0xFF) at++;
            if (at + 2 >= b.Length) return null;
            byte marker = b[at++];
            int length = BinaryPrimitives.ReadUInt16BigEndian(b[at..]);
            bool sof = marker is >= 0xC0 and <= 0xCF and not 0xC4 and not 0xC8 and not 0xCC;
            if (sof)
                return b.Length - at >= 7
                    ? new Size(ImageFormat.Jpeg, BinaryPrimitives.ReadUInt16BigEndian(b[(at + 5)..]), BinaryPrimitives.ReadUInt16BigEndian(b[(at + 3)..]))
                    : null;
            // DQT, DHT, DRI, APPn and COM are what stb reads before a frame header.
            if (marker is not (0xDB or 0xC4 or 0xDD or >= 0xE0 and <= 0xEF or 0xFE) || length < 2) return null;
            at += length;
        }
        return null;
    }

    /// <summary>IHDR, which must be the first chunk (stb also allows Apple's CgBI chunk before it).</summary>
    static Size? Png(ReadOnlySpan<byte> b)
    {
        int at = 8;
        if (b.Length >= at + 8 && b.Slice(at + 4, 4).SequenceEqual("CgBI"u8))
            at += 12 + (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(b[at..]), int.MaxValue / 2);
        if (at < 0 || b.Length < at + 16 || !b.Slice(at + 4, 4).SequenceEqual("IHDR"u8)) return null;
        return new Size(ImageFormat.Png, BinaryPrimitives.ReadUInt32BigEndian(b[(at + 8)..]), BinaryPrimitives.ReadUInt32BigEndian(b[(at + 12)..]));
    }

    /// <summary>
    /// The info header after the 14-byte file header: 16-bit sizes in the old OS/2 form (12 bytes), signed
    /// 32-bit ones otherwise. A negative height means rows stored top down, so its magnitude counts.
    /// </summary>
    static Size? Bmp(ReadOnlySpan<byte> b)
    {
        if (U32Le(b, 14) == 12)
            return b.Length >= 22 ? new Size(ImageFormat.Bmp, U16Le(b, 18), U16Le(b, 20)) : null;
        if (b.Length < 26) return null;
        long height = BinaryPrimitives.ReadInt32LittleEndian(b[22..]);
        return new Size(ImageFormat.Bmp, BinaryPrimitives.ReadInt32LittleEndian(b[18..]), Math.Abs(height));
    }

    /// <summary>
    /// The logical screen, which stb allocates whole (about 9 bytes a pixel) whatever the frames cover; and the
    /// first frame's image descriptor, returned instead when it is the larger (stb refuses a frame that
    /// overflows the screen, but only after allocating the screen).
    /// </summary>
    static Size? Gif(ReadOnlySpan<byte> b)
    {
        if (b.Length < 13) return null;
        var screen = new Size(ImageFormat.Gif, U16Le(b, 6), U16Le(b, 8), "logical screen");
        if (screen.Pixels == 0) return screen;
        int at = 13 + ((b[10] & 0x80) != 0 ? 3 << ((b[10] & 7) + 1) : 0);
        while (at < b.Length)
        {
            switch (b[at])
            {
                case 0x2C when b.Length - at >= 10:
                    var frame = new Size(ImageFormat.Gif, U16Le(b, at + 5), U16Le(b, at + 7), "first frame");
                    return frame.Pixels > screen.Pixels ? frame : screen;
                case 0x21:   // an extension: label, then sub-blocks up to an empty one
                    at += 2;
                    while (at < b.Length && b[at] != 0) at += b[at] + 1;
                    at++;
                    break;
                default:
                    return screen;
            }
        }
        return screen;
    }

    static bool IsTga(ReadOnlySpan<byte> b)
    {
        int colorMap = At(b, 1), type = At(b, 2);
        if (colorMap > 1) return false;
        if (colorMap == 1 && (type is not (1 or 9) || At(b, 7) is not (8 or 15 or 16 or 24 or 32))) return false;
        if (colorMap == 0 && type is not (2 or 3 or 10 or 11)) return false;
        if (U16Le(b, 12) < 1 || U16Le(b, 14) < 1) return false;
        int bits = At(b, 16);
        if (colorMap == 1 && bits is not (8 or 16)) return false;
        return bits is 8 or 15 or 16 or 24 or 32;
    }

    internal static int At(ReadOnlySpan<byte> b, int i) => i < b.Length ? b[i] : 0;
    internal static int U16Le(ReadOnlySpan<byte> b, int i) => At(b, i) | At(b, i + 1) << 8;
    internal static uint U32Le(ReadOnlySpan<byte> b, int i) => (uint)(U16Le(b, i) | U16Le(b, i + 2) << 16);
}
