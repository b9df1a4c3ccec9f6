using System.Buffers.Binary;
using static Xception.Gpu.Imaging.ImageHeader;

namespace Xception.Gpu.Imaging;

/// <summary>
/// Truncation rules for BMP, GIF, TGA and PSD, which stb would otherwise fill with zeros. Each asks only for
/// the bytes stb reads for the first image: a BMP's rows, a GIF's first frame, a TGA's or PSD's pixel data.
/// Where a header holds values stb refuses (a compression it lacks, a bit depth it does not know), the check
/// says nothing and leaves the refusal to stb.
/// </summary>
internal static partial class TruncationCheck
{
    /// <summary>
    /// Uncompressed rows (BI_RGB or BI_BITFIELDS) start at the header's pixel-data offset, each padded to 4
    /// bytes; the last row's padding is not required, since some writers leave it out. stb refuses RLE and
    /// embedded JPEG/PNG BMPs, so those have no rule here.
    /// </summary>
    static string? Bmp(ReadOnlySpan<byte> b)
    {
        bool os2 = U32Le(b, 14) == 12;
        if (b.Length < (os2 ? 26 : 34)) return "a truncated BMP: it ends inside its header";
        if (Read(b) is not { Width: > 0, Height: > 0 } size) return null;
        int bits = U16Le(b, os2 ? 24 : 28);
        uint compression = os2 ? 0 : U32Le(b, 30);
        if (compression is not (0 or 3) || bits is not (1 or 4 or 8 or 16 or 24 or 32)) return null;
        long offset = U32Le(b, 10);
        long stride = (size.Width * bits + 31) / 32 * 4;
        long need = stride * (size.Height - 1) + (size.Width * bits + 7) / 8;
        long left = Math.Max(0, b.Length - offset);
        return need > left
            ? $"a truncated BMP: its header declares {need} bytes of pixel data from byte {offset} ({size.Width}x{size.Height} at {bits} bits a pixel), {left} are there"
            : null;
    }

    /// <summary>
    /// The first frame must be complete: the header, the colour tables, any extensions before the frame, its
    /// image descriptor, and its LZW data up to the empty sub-block that ends it. stb stops at the first frame,
    /// so what follows it is not checked.
    /// </summary>
    static string? Gif(ReadOnlySpan<byte> b)
    {
        const string BeforeFrame = "a truncated GIF: it ends before its first frame";
        if (b.Length < 13) return BeforeFrame;
        long at = 13 + ((b[10] & 0x80) != 0 ? 3 << ((b[10] & 7) + 1) : 0);
        while (true)
        {
            if (at >= b.Length) return BeforeFrame;
            switch (b[(int)at])
            {
                case 0x21:
                    at = SubBlocks(b, at + 2);
                    if (at < 0) return BeforeFrame;
                    break;
                case 0x2C:
                    if (b.Length - at < 10) return BeforeFrame;
                    int flags = b[(int)at + 9];
                    at += 10 + ((flags & 0x80) != 0 ? 3 << ((flags & 7) + 1) : 0) + 1;   // + the LZW code size
                    return at > b.Length || SubBlocks(b, at) < 0
                        ? "a truncated GIF: its first frame's image data ends before its terminating block"
                        : null;
                default:
                    return null;   // the trailer or a stray byte: stb's to judge
            }
        }
    }

    /// <summary>Just past the empty sub-block ending the chain that starts at <paramref name="at"/>, or -1.</summary>
    static long SubBlocks(ReadOnlySpan<byte> b, long at)
    {
        while (at < b.Length)
        {
            int length = b[(int)at];
            at += length + 1;
            if (length == 0) return at;
        }
        return -1;
    }

    /// <summary>
    /// Pixels follow the 18-byte header, the image ID and the colour map (stb skips the map's "first entry"
    /// field as a byte count, so the same is counted here); uncompressed they are width x height x bytes a
    /// pixel, run-length coded they are packets that must cover every pixel.
    /// </summary>
    static string? Tga(ReadOnlySpan<byte> b)
    {
        if (b.Length < 18) return "a truncated TGA: it ends inside its header";
        bool mapped = b[1] == 1;
        long start = 18 + b[0] + (mapped ? U16Le(b, 3) + (long)U16Le(b, 5) * ((b[7] + 7) / 8) : 0);
        long pixels = (long)U16Le(b, 12) * U16Le(b, 14);
        int size = (b[16] + 7) / 8;
        if (b[2] < 8)
        {
            long need = pixels * size, left = Math.Max(0, b.Length - start);
            return need > left
                ? $"a truncated TGA: its header declares {need} bytes of pixel data from byte {start} ({U16Le(b, 12)}x{U16Le(b, 14)} at {b[16]} bits a pixel), {left} are there"
                : null;
        }
        long done = 0, at = start;
        while (done < pixels)
        {
            if (at >= b.Length) break;
            int packet = b[(int)at++];
            long count = Math.Min((packet & 0x7F) + 1, pixels - done);
            at += (packet & 0x80) != 0 ? size : count * size;
            if (at > b.Length) break;
            done += count;
        }
        return done < pixels ? $"a truncated TGA: its run-length data ends after {done} of its {pixels} pixels" : null;
    }

    /// <summary>
    /// After the 26-byte header come three sections, each with a 32-bit length (colour mode data, image
    /// resources, layers and masks), then the compression and the merged image: raw, channels x height x width
    /// samples; RLE, a table of each row's byte count, then those bytes.
    /// </summary>
    static string? Psd(ReadOnlySpan<byte> b)
    {
        const string BeforeImage = "a truncated PSD: it ends before its image data";
        if (b.Length < 26) return BeforeImage;
        long at = 26;
        for (int section = 0; section < 3; section++)
        {
            if (b.Length - at < 4) return BeforeImage;
            at += 4 + (long)BinaryPrimitives.ReadUInt32BigEndian(b[(int)at..]);
        }
        if (b.Length - at < 2) return BeforeImage;
        int compression = BinaryPrimitives.ReadUInt16BigEndian(b[(int)at..]);
        at += 2;
        int channels = BinaryPrimitives.ReadUInt16BigEndian(b[12..]), depth = BinaryPrimitives.ReadUInt16BigEndian(b[22..]);
        if (Read(b) is not { Width: > 0, Height: > 0 } size || channels is < 1 or > 16 || depth is not (8 or 16)) return null;
        long need;
        if (compression == 0)
            need = channels * size.Height * size.Width * (depth / 8);
        else if (compression == 1)
        {
            long rows = channels * size.Height;
            if (b.Length - at < 2 * rows) return $"a truncated PSD: it ends inside its table of {rows} row lengths";
            need = 0;
            for (long r = 0; r < rows; r++) need += BinaryPrimitives.ReadUInt16BigEndian(b[(int)(at + 2 * r)..]);
            at += 2 * rows;
        }
        else return null;
        long left = b.Length - at;
        return need > left ? $"a truncated PSD: its image data needs {need} bytes from byte {at}, {left} are there" : null;
    }
}
