using System.Buffers.Binary;
using System.Text;

namespace Xception.Gpu.Imaging;

/// <summary>
/// Finds image files that end early, before stb sees them. stb reads past the end of its input as zeros, so a
/// truncated JPEG decodes into grey blocks, and a truncated BMP, GIF, TGA or PSD into black or zero-filled
/// pixels, all without complaint, where PIL, and so Keras, raises "image file is truncated"; for a truncated
/// PNG it fails, but with a reason that says nothing useful. Walking the file's structure catches all of
/// them cheaply: PNG chunks up to IEND; JPEG segments and entropy-coded data up to the EOI marker; for the
/// others, see <c>TruncationCheck.Formats.cs</c>. The format is the one stb will take the file for
/// (<see cref="ImageHeader.Detect"/>). Only running out of bytes is reported; other damage is left to stb,
/// which judges it as it decodes.
/// </summary>
internal static partial class TruncationCheck
{
    /// <summary>Why the file is truncated, or null when it is complete or its format is not known.</summary>
    public static string? Find(ReadOnlySpan<byte> b) => ImageHeader.Detect(b) switch
    {
        ImageFormat.Png => Png(b),
        ImageFormat.Jpeg => Jpeg(b),
        ImageFormat.Bmp => Bmp(b),
        ImageFormat.Gif => Gif(b),
        ImageFormat.Tga => Tga(b),
        ImageFormat.Psd => Psd(b),
        _ => null,
    };

    static string? Png(ReadOnlySpan<byte> b)
    {
        int at = 8;
        while (true)
        {
            if (b.Length - at < 8) return "a truncated PNG: it ends before the IEND chunk";
            long length = BinaryPrimitives.ReadUInt32BigEndian(b[at..]);
            var type = Encoding.ASCII.GetString(b.Slice(at + 4, 4));
            long need = length + 12;
            if (need > b.Length - at)
                return $"a truncated PNG: chunk '{Printable(type)}' at byte {at} needs {need} bytes, {b.Length - at} are left";
            if (type == "IEND") return null;
            at += (int)need;
        }
    }

    static string? Jpeg(ReadOnlySpan<byte> b)
    {
        const string Truncated = "a truncated JPEG: it ends before the end-of-image marker";
        int at = ImageHeader.JpegStart(b);
        while (true)
        {
            if (at >= b.Length) return Truncated;
            if (b[at] != 0xFF) return null;                      // not a marker: damage for stb to judge
            while (at < b.Length && b[at] == 0xFF) at++;         // fill bytes before a marker
            if (at >= b.Length) return Truncated;
            byte marker = b[at++];
            if (marker == 0xD9) return null;                     // EOI
            if (marker is >= 0xD0 and <= 0xD7 or 0x01) continue; // RSTn and TEM carry no length
            if (b.Length - at < 2) return Truncated;
            int length = BinaryPrimitives.ReadUInt16BigEndian(b[at..]);
            if (length > b.Length - at) return Truncated;
            at += length;
            if (marker != 0xDA) continue;
            // After a start-of-scan header: entropy-coded data, where 0xFF is followed by 0x00 (a stuffed byte) or
            // by a restart marker; anything else starts the next segment.
            while (true)
            {
                if (at + 1 >= b.Length) return Truncated;
                if (b[at] == 0xFF && b[at + 1] != 0x00 && b[at + 1] is < 0xD0 or > 0xD7) break;
                at++;
            }
        }
    }

    static string Printable(string s) => new(s.Select(c => c is >= ' ' and <= '~' ? c : '?').ToArray());
}
