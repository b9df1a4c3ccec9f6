using System.Buffers.Binary;
using System.IO.Compression;

namespace Xception.Gpu.Data;

/// <summary>
/// Reads an IDX file (the MNIST format: a big-endian magic 0x000008TD, T = 0x08 for unsigned bytes, D the
/// number of dimensions, then D big-endian 32-bit sizes, then the data), gzipped or not. Compression is
/// recognised by the gzip magic (1F 8B), not by the name, because downloads often get renamed or unpacked
/// without changing the name.
///
/// The header is read from the (decompressed) stream first and the data size it declares is checked before
/// anything is allocated for the data: against the file's length for a plain file, and for a gzipped file
/// against <see cref="MaxDataBytes"/> and against the most a gzip file of that length can decompress to
/// (<see cref="MaxDeflateRatio"/>). A gzipped file is decompressed only up to its header plus the declared data
/// plus one probe byte, so a small .gz that inflates to gigabytes behind a header declaring a few images is
/// refused after inflating only what the header asked for.
/// </summary>
internal static class IdxFile
{
    /// <summary>
    /// The most data bytes (the product of the dimensions) a file may declare: the data is held in one byte
    /// array, so the limit is the largest array .NET allocates (<see cref="Array.MaxLength"/>, just under 2 GiB),
    /// forty times MNIST's 47 MB training images. Checked while multiplying, so no product can overflow.
    /// </summary>
    public const long MaxDataBytes = 0x7FFFFFC7;

    /// <summary>
    /// Deflate's largest possible expansion: one 258-byte match coded in 2 bits is 1032 output bytes per input
    /// byte. A gzip file of C bytes that declares more than 1032 * C data bytes cannot be complete.
    /// </summary>
    public const long MaxDeflateRatio = 1032;

    /// <summary>
    /// Reads the file's header (checking <paramref name="magic"/>, whose low byte is the number of dimensions)
    /// and exactly the data its dimensions declare. A plain file may be longer than that (the rest is not
    /// read); a gzipped file must decompress to exactly the header and the data.
    /// </summary>
    public static (int[] Dims, byte[] Data) Read(string path, string what, uint magic)
    {
        var fs = IO.InputFile.OpenRead(path, $"{what} file", $"an IDX {what} file", (m, e) => new DataException(path, m, e));
        using (fs)
        {
            try
            {
                long fileLength = fs.Length;
                Span<byte> gzMagic = stackalloc byte[2];
                int got = fs.ReadAtLeast(gzMagic, 2, throwOnEndOfStream: false);
                fs.Position = 0;
                if (got < 2 || gzMagic[0] != 0x1F || gzMagic[1] != 0x8B)
                    return ReadPlain(fs, fileLength, path, what, magic);
                return ReadGzip(fs, fileLength, path, what, magic);
            }
            catch (InvalidDataException e)
            { throw new DataException(path, $"{what} file '{path}' is a truncated or corrupt gzip file ({OneLine(e.Message)})", e); }
            catch (IOException e)
            { throw new DataException(path, $"{what} file '{path}' could not be read: {OneLine(e.Message)}", e); }
        }
    }

    static (int[], byte[]) ReadPlain(FileStream fs, long fileLength, string path, string what, uint magic)
    {
        var (dims, offset, declared) = Header(fs, path, what, magic, gzipped: false);
        long have = fileLength - offset;
        if (have < declared)
            throw new DataException(path, $"{what} file '{path}' is truncated: its header promises {string.Join(" x ", dims)} = {declared} bytes of data, found {have}");
        var data = new byte[declared];
        fs.ReadExactly(data);
        return (dims, data);
    }

    static (int[], byte[]) ReadGzip(FileStream fs, long fileLength, string path, string what, uint magic)
    {
        using var gz = new GZipStream(fs, CompressionMode.Decompress, leaveOpen: true);
        // The header is read from the decompressed stream; "the file has" then counts decompressed bytes.
        var (dims, offset, declared) = Header(gz, path, what, magic, gzipped: true);
        if (declared > MaxDeflateRatio * fileLength)
            throw new DataException(path, $"{what} file '{path}' is a truncated or corrupt gzip file: its header promises {string.Join(" x ", dims)} = {declared} bytes of data, " +
                $"more than the {MaxDeflateRatio * fileLength} bytes a {fileLength}-byte gzip file can hold");

        // The buffer grows with what actually comes out, so a header that lies about a large size costs only
        // what the stream really holds; a plausible compression ratio sizes the first buffer.
        var data = new byte[Math.Min(declared, 4 * fileLength + 65536)];
        long got = 0;
        while (got < declared)
        {
            if (got == data.Length) Array.Resize(ref data, (int)Math.Min(declared, 2L * data.Length));
            int n = gz.Read(data, (int)got, data.Length - (int)got);
            if (n == 0) break;
            got += n;
        }
        if (got < declared)
            throw new DataException(path, $"{what} file '{path}' is a truncated or corrupt gzip file: it decompresses to {offset + got} bytes, " +
                $"its header promises {string.Join(" x ", dims)} = {declared} bytes of data after the {offset}-byte header");
        // One probe byte: anything after the declared data means the header does not describe the file
        // (or the file is a decompression bomb), and nothing more is inflated to find out how much there is.
        Span<byte> probe = stackalloc byte[1];
        if (gz.Read(probe) != 0)
            throw new DataException(path, $"{what} file '{path}' decompresses to more than the {offset + declared} bytes its header declares " +
                $"({offset}-byte header, {string.Join(" x ", dims)} bytes of data); expected exactly that many");
        // .NET's GZipStream stops quietly at the end of a cut file; the trailer's length (mod 2^32) catches it.
        uint trailer = uint.MaxValue;
        if (fileLength >= 18)
        {
            Span<byte> last = stackalloc byte[4];
            fs.Position = fileLength - 4;
            fs.ReadExactly(last);
            trailer = BinaryPrimitives.ReadUInt32LittleEndian(last);
        }
        if (trailer != (uint)(offset + declared))
            throw new DataException(path, $"{what} file '{path}' is a truncated or corrupt gzip file: it decompresses to {offset + declared} bytes, its trailer says {trailer}");
        return (dims, data);
    }

    /// <summary>
    /// Reads and checks the magic and the sizes from <paramref name="s"/> (its first bytes). Returns the
    /// dimensions, the header's length and the declared data size, at most <see cref="MaxDataBytes"/>.
    /// </summary>
    static (int[] Dims, int Offset, long Declared) Header(Stream s, string path, string what, uint magic, bool gzipped)
    {
        int dims = (int)(magic & 0xFF);
        int offset = 4 + 4 * dims;
        var head = new byte[offset];
        int got = s.ReadAtLeast(head, offset, throwOnEndOfStream: false);
        if (got >= 4 && BinaryPrimitives.ReadUInt32BigEndian(head) != magic)
            throw new DataException(path, $"{what} file '{path}' is not an IDX {what} file: expected magic 0x{magic:X8}, found magic 0x{BinaryPrimitives.ReadUInt32BigEndian(head):X8}");
        // A gzip stream that ends inside the header is a cut download far more often than a tiny IDX file.
        if (gzipped && got < offset)
            throw new DataException(path, $"{what} file '{path}' is a truncated or corrupt gzip file: it decompresses to {got} bytes, less than the {offset}-byte IDX {what} header");
        if (got < 4)
            throw new DataException(path, $"{what} file '{path}' is not an IDX {what} file: expected magic 0x{magic:X8}, found {got} bytes");
        if (got < offset)
            throw new DataException(path, $"{what} file '{path}' is truncated: its header needs {offset} bytes, the file has {got}");
        var sizes = new int[dims];
        long total = 1;
        bool tooLarge = false;
        for (int d = 0; d < dims; d++)
        {
            uint size = BinaryPrimitives.ReadUInt32BigEndian(head.AsSpan(4 + 4 * d));
            if (size > int.MaxValue)
                throw new DataException(path, $"{what} file '{path}' has dimension {d} of size {size}; expected at most {int.MaxValue}");
            sizes[d] = (int)size;
            // Compared before multiplying (total stays <= MaxDataBytes, size < 2^31): the product never overflows.
            // A zero dimension after a huge one still makes an empty file, so keep going rather than stop here.
            if (tooLarge) continue;
            if (size != 0 && total > MaxDataBytes / size) tooLarge = true;
            else total *= size;
        }
        if (tooLarge && !sizes.Contains(0))
            throw new DataException(path, $"{what} file '{path}' declares {string.Join(" x ", sizes)} bytes of data, more than the {MaxDataBytes} bytes one data set file may hold");
        if (tooLarge) total = 0;
        return (sizes, offset, total);
    }

    static string OneLine(string s) => string.Join(' ', s.Split('\r', '\n', StringSplitOptions.RemoveEmptyEntries)).TrimEnd('.');
}
