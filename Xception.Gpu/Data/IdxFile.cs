using System.Buffers.Binary;
using System.IO.Compression;

namespace Xception.Gpu.Data;

/// <summary>
/// Reads an IDX file (the MNIST format: a big-endian magic 0x000008TD, T = 0x08 for unsigned bytes, D the
/// number of dimensions, then D big-endian 32-bit sizes, then the data), gzipped or not. Compression is
/// recognised by the gzip magic (1F 8B), not by the name, because downloads often get renamed or unpacked
/// without changing the name.
/// </summary>
internal static class IdxFile
{
    /// <summary>The whole file, gunzipped when it starts with the gzip magic.</summary>
    public static byte[] ReadAll(string path, string what)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        { throw new DataException(path, $"{what} file '{path}' not found", e); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new DataException(path, $"{what} file '{path}' could not be read: {e.Message}", e); }
        if (bytes.Length < 2 || bytes[0] != 0x1F || bytes[1] != 0x8B) return bytes;
        try
        {
            using var gz = new GZipStream(new MemoryStream(bytes), CompressionMode.Decompress);
            using var ms = new MemoryStream();
            gz.CopyTo(ms);
            // .NET's GZipStream stops quietly at the end of a cut file; the trailer's length (mod 2^32) catches it.
            uint trailer = bytes.Length >= 18 ? BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(bytes.Length - 4)) : uint.MaxValue;
            if (trailer != (uint)ms.Length)
                throw new DataException(path, $"{what} file '{path}' is a truncated or corrupt gzip file: it decompresses to {ms.Length} bytes, its trailer says {trailer}");
            return ms.ToArray();
        }
        catch (InvalidDataException e)
        { throw new DataException(path, $"{what} file '{path}' is a truncated or corrupt gzip file ({e.Message.TrimEnd('.')})", e); }
    }

    /// <summary>
    /// Checks the magic and returns the dimensions and the offset of the data; the data must fill the file
    /// exactly as the dimensions say (shorter is truncated).
    /// </summary>
    public static (int[] Dims, int Offset) Header(byte[] data, string path, string what, uint magic)
    {
        int dims = (int)(magic & 0xFF);
        if (data.Length < 4 || BinaryPrimitives.ReadUInt32BigEndian(data) != magic)
        {
            var found = data.Length < 4 ? $"{data.Length} bytes" : $"magic 0x{BinaryPrimitives.ReadUInt32BigEndian(data):X8}";
            throw new DataException(path, $"{what} file '{path}' is not an IDX {what} file: expected magic 0x{magic:X8}, found {found}");
        }
        int offset = 4 + 4 * dims;
        if (data.Length < offset)
            throw new DataException(path, $"{what} file '{path}' is truncated: its header needs {offset} bytes, the file has {data.Length}");
        var sizes = new int[dims];
        long total = 1;
        for (int d = 0; d < dims; d++)
        {
            uint s = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(4 + 4 * d));
            if (s > int.MaxValue) throw new DataException(path, $"{what} file '{path}' has dimension {d} of size {s}, too large");
            sizes[d] = (int)s;
            total *= s;
        }
        long have = data.Length - offset;
        if (have < total)
            throw new DataException(path, $"{what} file '{path}' is truncated: its header promises {string.Join(" x ", sizes)} = {total} bytes of data, found {have}");
        return (sizes, offset);
    }
}
