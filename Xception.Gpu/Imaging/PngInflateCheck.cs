using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;

namespace Xception.Gpu.Imaging;

/// <summary>
/// Refuses a PNG whose compressed image data inflates to far more than its header needs: a decompression bomb
/// that the pixel limit does not see. stb inflates all the IDAT data at once into a native buffer that doubles
/// whenever it fills (up to 4 GB), whatever the header says, so a 1000x1000 image whose IDAT inflates to 400 MB of
/// zeros (zlib reaches about 1000:1) costs 400 MB of native memory and the time to fill it before stb finds that
/// it only needed the first megabyte. Here the data is inflated first, 64 KB at a time into one reused buffer, only
/// counting, and the count stops as soon as it passes the bound; so the check costs a fixed small amount of memory
/// and time bounded by the header (itself bounded by <see cref="ImageLoader.MaxPixels"/>).
///
/// The check mirrors what stb inflates: the IDAT chunks up to IEND, concatenated, as a zlib stream whose
/// two-byte header stb checks itself (a header stb refuses is left to stb, which refuses it before inflating);
/// a file with Apple's CgBI chunk anywhere before IEND holds raw deflate data with no zlib header, as stb reads it.
/// DeflateStream is used on the data after the header rather than ZLibStream on all of it: ZLibStream also
/// checks the header's window size and the Adler-32 trailer, which stb ignores and PIL never reaches (it stops
/// inflating at the last row), so ZLibStream would refuse files both load.
///
/// Cost: the data is inflated twice, here (zlib, native) and by stb. On 299x299 RGB PNGs written by
/// StbImageWriteSharp, measured on a busy 2-core machine (minimum of 60 rounds of 10), the check adds about 45% to
/// stb's decode where the data is Huffman-coded, photo-like content (zlib 1.1 ms against stb's 2.5 ms), and
/// 3 to 10% for flat images or stored (incompressible) data. The alternative that would cost nothing, handing stb
/// the data inflated here as stored blocks, would also hold the inflated image in managed memory.
/// </summary>
internal static class PngInflateCheck
{
    const int Piece = 64 * 1024;

    /// <summary>
    /// Why the file is refused ("a PNG whose ..."), or null when it is not a PNG, its inflated size is within the
    /// bound, or stb will refuse it before inflating anything (a malformed header, chunk order or zlib header).
    /// Expects a file the truncation check has passed; a chunk running past the end is left to that check.
    /// </summary>
    public static string? Find(byte[] png)
    {
        if (ImageHeader.Detect(png) != ImageFormat.Png) return null;
        if (ReadChunks(png) is not { } found) return null;
        var (header, idat, rawDeflate) = found;
        long needed = header.Needed();
        // Bytes past what the rows need are not always an attack: the PNG specification calls them an error,
        // but libpng only warns, PIL stops inflating at the last row and never sees them, and stb accepts them
        // (stb_image issue #276: a file in the wild with zeros after its image data). Refusing any excess would
        // refuse files that Keras opens. Twice what the header needs (at least 64 KB more, for tiny images) is
        // still bounded by the header, and it is as far as stb's buffer, allocated at that size, grows on its
        // first doubling.
        long allowed = needed + Math.Max(needed, 64 * 1024);

        using var source = new Segments(png, idat);
        if (!rawDeflate && !ZlibHeaderOk(source)) return null;
        var buffer = ArrayPool<byte>.Shared.Rent(Piece);
        long total = 0;
        try
        {
            using var inflate = new DeflateStream(source, CompressionMode.Decompress);
            int n;
            while ((n = inflate.Read(buffer, 0, Piece)) > 0)
            {
                total += n;
                if (total > allowed)
                    return string.Create(CultureInfo.InvariantCulture,
                        $"a PNG whose compressed image data inflates to more than {allowed:N0} bytes, where its {header.Width}x{header.Height} header needs {needed:N0}; refused as a possible decompression bomb");
            }
        }
        catch (InvalidDataException e)
        {
            // Reported here rather than left to stb, because stb's inflater is more lenient than zlib's: it accepts
            // incomplete Huffman codes, for one, which zlib rejects. Data that only stb accepts could not be
            // counted, so leaving it to stb would let a bomb built that way through. Refusing it matches PIL,
            // which inflates with zlib and fails on the same data ("broken data stream"); an error after the last
            // row, which PIL would not reach, is refused too, as the bytes after it could still be a bomb.
            return string.Create(CultureInfo.InvariantCulture,
                $"a PNG whose compressed image data is corrupt after {total:N0} of the {needed:N0} bytes its {header.Width}x{header.Height} header needs (zlib: {OneLine(e.Message)})");
        }
        finally { ArrayPool<byte>.Shared.Return(buffer); }
        return null;
    }

    /// <summary>The IHDR fields that set the size of the inflated data.</summary>
    readonly record struct Header(long Width, long Height, int Channels, int Depth, bool Interlaced)
    {
        /// <summary>
        /// Exactly what the rows need: one filter byte per row plus the row's samples packed to whole bytes
        /// (PNG specification, sections 7.2 and 8.2); for Adam7, the same per pass, over each pass's reduced
        /// image, an empty pass (no columns or no rows) contributing nothing.
        /// </summary>
        public long Needed()
        {
            if (!Interlaced) return Height * (1 + RowBytes(Width));
            long sum = 0;
            for (int p = 0; p < 7; p++)
            {
                // Pass p takes columns x0, x0 + dx, ... and rows y0, y0 + dy, ...: ceil((size - origin) / spacing),
                // which is 0 when the image is no larger than the origin.
                long w = (Width - X0[p] + Dx[p] - 1) / Dx[p];
                long h = (Height - Y0[p] + Dy[p] - 1) / Dy[p];
                if (w > 0 && h > 0) sum += h * (1 + RowBytes(w));
            }
            return sum;
        }

        long RowBytes(long pixels) => (pixels * Channels * Depth + 7) / 8;

        static readonly int[] X0 = [0, 4, 0, 2, 0, 1, 0], Y0 = [0, 0, 4, 0, 2, 0, 1];
        static readonly int[] Dx = [8, 8, 4, 4, 2, 2, 1], Dy = [8, 8, 8, 4, 4, 2, 2];
    }

    static uint Type(string name) => BinaryPrimitives.ReadUInt32BigEndian(System.Text.Encoding.ASCII.GetBytes(name));

    static readonly uint Ihdr = Type("IHDR"), Idat = Type("IDAT"), Iend = Type("IEND"), CgBI = Type("CgBI");

    /// <summary>
    /// Walks the chunks as stb does: IHDR first (only CgBI may come before it), IDAT data collected wherever it
    /// appears, up to IEND. Null where stb would refuse the file before inflating: another chunk before IHDR, a
    /// second IHDR, an IHDR stb rejects, no IDAT, or no IEND.
    /// </summary>
    static (Header, List<(int Offset, int Length)>, bool RawDeflate)? ReadChunks(byte[] b)
    {
        Header? header = null;
        var idat = new List<(int, int)>();
        bool iphone = false;
        int at = 8;
        while (b.Length - at >= 12)
        {
            uint length = BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(at));
            uint type = BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(at + 4));
            if (length > b.Length - at - 12) return null;
            int data = at + 8;
            if (type == CgBI) iphone = true;
            else if (type == Ihdr)
            {
                if (header is not null || length != 13 || ParseIhdr(b.AsSpan(data, 13)) is not { } h) return null;
                header = h;
            }
            else if (header is null) return null;
            else if (type == Idat) idat.Add((data, (int)length));
            else if (type == Iend) return idat.Count == 0 ? null : (header.Value, idat, iphone);
            at = data + (int)length + 4;
        }
        return null;
    }

    /// <summary>The header's fields, or null for a combination stb rejects (so it never inflates the data).</summary>
    static Header? ParseIhdr(ReadOnlySpan<byte> d)
    {
        long width = BinaryPrimitives.ReadUInt32BigEndian(d), height = BinaryPrimitives.ReadUInt32BigEndian(d[4..]);
        int depth = d[8], color = d[9];
        // stb refuses sides above 2^24, which also keeps the arithmetic in Needed far from overflowing.
        if (width is < 1 or > 1 << 24 || height is < 1 or > 1 << 24) return null;
        if (depth is not (1 or 2 or 4 or 8 or 16) || d[10] != 0 || d[11] != 0 || d[12] > 1) return null;
        int channels = color switch { 0 => 1, 2 => 3, 3 => 1, 4 => 2, 6 => 4, _ => 0 };
        // The specification allows depths below 8 for grayscale and palette images only; stb rejects only 16-bit
        // palettes, and for the other combinations reads rows of the packed size computed in Needed, as here.
        if (channels == 0 || color == 3 && depth == 16) return null;
        return new Header(width, height, channels, depth, d[12] == 1);
    }

    /// <summary>
    /// stb's checks on the zlib header, which it makes before inflating: a multiple of 31, no preset dictionary,
    /// method 8 (deflate). Unlike zlib, stb does not check the window size, so neither is it checked here. Reads
    /// the two header bytes off <paramref name="source"/>, leaving the deflate data.
    /// </summary>
    static bool ZlibHeaderOk(Stream source)
    {
        int cmf = source.ReadByte(), flg = source.ReadByte();
        if (cmf < 0 || flg < 0 || source.Position == source.Length) return false;
        return (cmf * 256 + flg) % 31 == 0 && (flg & 32) == 0 && (cmf & 15) == 8;
    }

    static string OneLine(string s)
    {
        s = s.Trim();
        int nl = s.IndexOfAny(['\r', '\n']);
        return nl < 0 ? s : s[..nl].TrimEnd();
    }

    /// <summary>The IDAT chunks' data read as one stream, without copying it out of the file.</summary>
    sealed class Segments(byte[] bytes, List<(int Offset, int Length)> parts) : Stream
    {
        int part, within;
        long position;
        readonly long length = parts.Sum(p => (long)p.Length);

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            while (part < parts.Count && within == parts[part].Length) { part++; within = 0; }
            if (part == parts.Count || buffer.IsEmpty) return 0;
            var (start, size) = parts[part];
            int n = Math.Min(buffer.Length, size - within);
            bytes.AsSpan(start + within, n).CopyTo(buffer);
            within += n;
            position += n;
            return n;
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => length;
        public override long Position { get => position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
