using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace Xception.Gpu.IO;

/// <summary>
/// Reads and writes NumPy .npy files, the format <c>numpy.save</c> writes: the way Keras weights, reference
/// activations and test tensors move between Python and this library without a Python dependency here.
///
/// Reading accepts format versions 1.0, 2.0 and 3.0 (2.0 widens the header length to 4 bytes, 3.0 makes the
/// header UTF-8), C-order arrays of dtype '&lt;f4', '&lt;f8', '|u1' or '&lt;i4', all converted to float32 because
/// that is what the tensors hold. Writing produces exactly what <c>numpy.save</c> writes for a C-contiguous
/// float32 array: version 1.0, '&lt;f4', the header padded with spaces so the data starts at a multiple of 64
/// bytes (NumPy aligns it so the data can be memory-mapped with any element type).
/// Every failure is an <see cref="NpyException"/> whose one-line message names the file.
/// </summary>
public static class Npy
{
    static ReadOnlySpan<byte> Magic => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>
    /// The longest header <see cref="Read"/> accepts. NumPy's own headers are a few hundred bytes (at most 64
    /// dimensions), and NumPy itself refuses headers over 10,000 bytes by default (max_header_size); 1 MiB leaves
    /// room for shapes of tens of thousands of dimensions while keeping a version 2/3 length field (up to 4 GiB)
    /// from making the reader hold a header text larger than any array's data could justify.
    /// </summary>
    public const int MaxHeaderBytes = 1 << 20;

    /// <summary>The dtypes <see cref="Read"/> converts, as NumPy spells them in the header.</summary>
    public static IReadOnlyList<string> SupportedDtypes { get; } = ["<f4", "<f8", "|u1", "<i4"];

    /// <summary>Reads a whole .npy file into float32, C order.</summary>
    public static NpyArray Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var fs = InputFile.OpenRead(path, "npy file", "a .npy file", (m, e) => new NpyException(path, m, e));
        using (fs)
        {
            try { return ReadOpen(path, fs); }
            catch (IOException e) { throw new NpyException(path, $"npy file '{path}' could not be read: {e.Message}", e); }
        }
    }

    static NpyArray ReadOpen(string path, FileStream fs)
    {
        long fileLength = fs.Length;
        Span<byte> prefix = stackalloc byte[12];
        int got = fs.ReadAtLeast(prefix[..8], 8, throwOnEndOfStream: false);
        if (got < Magic.Length || !prefix[..Magic.Length].SequenceEqual(Magic))
            throw new NpyException(path, $"'{path}' is not a .npy file: it does not start with the magic string \\x93NUMPY");
        if (got < 8) throw Truncated(path, "its header", 10, fileLength);
        int major = prefix[6], minor = prefix[7];
        if (major is < 1 or > 3 || minor != 0)
            throw new NpyException(path, $"npy file '{path}' has format version {major}.{minor}: supported are 1.0, 2.0 and 3.0");
        int lengthBytes = major == 1 ? 2 : 4;
        if (fs.ReadAtLeast(prefix.Slice(8, lengthBytes), lengthBytes, throwOnEndOfStream: false) < lengthBytes)
            throw Truncated(path, "its header", 8 + lengthBytes, fileLength);
        long headerLength = major == 1
            ? BinaryPrimitives.ReadUInt16LittleEndian(prefix[8..])
            : BinaryPrimitives.ReadUInt32LittleEndian(prefix[8..]);
        long dataStart = 8 + lengthBytes + headerLength;
        if (dataStart > fileLength) throw Truncated(path, "its header", dataStart, fileLength);
        if (headerLength > MaxHeaderBytes)
            throw new NpyException(path, $"npy file '{path}' declares a {headerLength}-byte header; expected at most {MaxHeaderBytes} bytes (NumPy writes a few hundred)");

        var headerBytes = new byte[headerLength];
        fs.ReadExactly(headerBytes);
        var text = major == 3 ? Encoding.UTF8.GetString(headerBytes) : Encoding.Latin1.GetString(headerBytes);
        var header = NpyHeader.Parse(path, text);

        if (header.FortranOrder)
            throw new NpyException(path, $"npy file '{path}' is in Fortran order (fortran_order True): only C order is supported; save np.ascontiguousarray(a)");
        int itemSize = header.Descr switch { "<f4" or "<i4" => 4, "<f8" => 8, "|u1" or "<u1" => 1, _ => 0 };
        if (itemSize == 0)
            throw new NpyException(path, $"npy file '{path}' has dtype '{NpyHeader.Printable(header.Descr, 80)}': supported are " +
                string.Join(", ", SupportedDtypes.Select(d => $"'{d}'")) + " (converted to float32)");

        long count = NpyHeader.Count(header.Shape);
        if (count > Array.MaxLength)
            throw new NpyException(path, $"npy file '{path}' holds shape {NpyHeader.ShapeText(header.Shape)}: more than the {Array.MaxLength} values one array can hold");
        long need = count * itemSize, found = fileLength - dataStart;
        if (found < need)
            throw new NpyException(path, $"npy file '{path}' is truncated: shape {NpyHeader.ShapeText(header.Shape)} of '{header.Descr}' " +
                $"needs {need} data bytes, found {found}");

        var data = new float[count];
        if (header.Descr == "<f4")
        {
            fs.ReadExactly(MemoryMarshal.AsBytes(data.AsSpan()));
            if (!BitConverter.IsLittleEndian)
                for (int i = 0; i < data.Length; i++) data[i] = BinaryPrimitives.ReadSingleLittleEndian(MemoryMarshal.AsBytes(data.AsSpan(i, 1)));
        }
        else
            ReadConverted(fs, header.Descr, itemSize, data);
        return new NpyArray(data, header.Shape);
    }

    /// <summary>Converts other dtypes in chunks, so a large file never needs a second full-size buffer.</summary>
    static void ReadConverted(FileStream fs, string descr, int itemSize, float[] data)
    {
        var buffer = new byte[Math.Min((long)data.Length * itemSize, 1 << 20)];
        int perChunk = buffer.Length / itemSize;
        for (int start = 0; start < data.Length; start += perChunk)
        {
            int n = Math.Min(perChunk, data.Length - start);
            var bytes = buffer.AsSpan(0, n * itemSize);
            fs.ReadExactly(bytes);
            var dst = data.AsSpan(start, n);
            switch (descr)
            {
                case "<f8":
                    for (int i = 0; i < n; i++) dst[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(bytes[(8 * i)..]);
                    break;
                case "<i4":
                    for (int i = 0; i < n; i++) dst[i] = BinaryPrimitives.ReadInt32LittleEndian(bytes[(4 * i)..]);
                    break;
                default:
                    for (int i = 0; i < n; i++) dst[i] = bytes[i];
                    break;
            }
        }
    }

    static NpyException Truncated(string path, string what, long need, long found) =>
        new(path, $"npy file '{path}' is truncated: {what} needs {need} bytes, the file has {found}");

    /// <summary>
    /// Writes <paramref name="data"/> as a C-order float32 array of <paramref name="shape"/> (an empty shape
    /// writes a 0-d array of one value), byte-identical to <c>numpy.save</c> of the same array.
    /// </summary>
    public static void Write(string path, ReadOnlySpan<float> data, int[] shape)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(shape);
        if (shape.Any(d => d < 0))
            throw new NpyException(path, $"cannot write npy file '{path}': shape {NpyHeader.ShapeText(shape)} has a negative dimension");
        long count = NpyHeader.Count(shape);
        if (count != data.Length)
            throw new NpyException(path, $"cannot write npy file '{path}': shape {NpyHeader.ShapeText(shape)} holds {count} values, {data.Length} were given");

        var header = Encoding.ASCII.GetBytes(NpyHeader.Format("<f4", shape));
        try
        {
            using var fs = File.Create(path);
            WriteHeader(fs, header);
            if (BitConverter.IsLittleEndian)
                fs.Write(MemoryMarshal.AsBytes(data));
            else
            {
                var le = new byte[4 * data.Length];
                for (int i = 0; i < data.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(le.AsSpan(4 * i), data[i]);
                fs.Write(le);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new NpyException(path, $"cannot write npy file '{path}': {e.Message}", e);
        }
    }

    /// <summary>
    /// Magic, version, header length, header, spaces, newline, as numpy.lib.format._wrap_header: the spaces make
    /// the prefix a multiple of 64 bytes (64 of them when it already is, as NumPy does). Version 2.0 only when the
    /// header outgrows version 1.0's 16-bit length, which takes a shape of thousands of dimensions.
    /// </summary>
    static void WriteHeader(Stream s, byte[] header)
    {
        int hlen = header.Length + 1;
        int major = 10 + hlen + 64 > ushort.MaxValue ? 2 : 1;
        int prefix = major == 1 ? 10 : 12;
        int pad = NpyHeader.Align - (prefix + hlen) % NpyHeader.Align;
        var bytes = new byte[prefix + hlen + pad];
        Magic.CopyTo(bytes);
        bytes[6] = (byte)major;
        if (major == 1) BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(8), (ushort)(hlen + pad));
        else BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), (uint)(hlen + pad));
        header.CopyTo(bytes, prefix);
        bytes.AsSpan(prefix + header.Length, pad).Fill((byte)' ');
        bytes[^1] = (byte)'\n';
        s.Write(bytes);
    }
}
