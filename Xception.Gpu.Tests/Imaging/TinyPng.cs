using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace Xception.Gpu.Tests.Imaging;

/// <summary>
/// A minimal PNG encoder for the PNG kinds stb_image_write cannot produce (palette images, 16-bit samples,
/// bit depths below 8): signature, IHDR, optional PLTE and tRNS, one IDAT (every row with filter 0, zlib via
/// ZLibStream), an optional made-up chunk, IEND, each chunk with its CRC-32 over type and data (PNG spec, section 5.3).
/// </summary>
internal static class TinyPng
{
    public const int Gray = 0, Rgb = 2, Palette = 3, GrayAlpha = 4, Rgba = 6;

    /// <summary>Encodes rows that are already packed for <paramref name="bitDepth"/> (16-bit big-endian).</summary>
    public static byte[] Encode(int width, int height, int bitDepth, int colorType, byte[][] rows,
        byte[]? palette = null, byte[]? transparency = null, string? extraChunk = null)
    {
        var png = new MemoryStream();
        png.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);

        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = (byte)bitDepth;
        ihdr[9] = (byte)colorType;   // compression, filter and interlace methods stay 0
        Chunk(png, "IHDR", ihdr);
        if (palette is not null) Chunk(png, "PLTE", palette);
        if (transparency is not null) Chunk(png, "tRNS", transparency);

        var raw = new MemoryStream();
        foreach (var row in rows) { raw.WriteByte(0); raw.Write(row); }
        var z = new MemoryStream();
        using (var zs = new ZLibStream(z, CompressionLevel.Optimal, leaveOpen: true)) zs.Write(raw.ToArray());
        Chunk(png, "IDAT", z.ToArray());
        if (extraChunk is not null) Chunk(png, extraChunk, [1, 2, 3]);
        Chunk(png, "IEND", []);
        return png.ToArray();
    }

    /// <summary>One row of 16-bit samples, big-endian as PNG stores them.</summary>
    public static byte[] Row16(params ushort[] samples)
    {
        var row = new byte[2 * samples.Length];
        for (int i = 0; i < samples.Length; i++) BinaryPrimitives.WriteUInt16BigEndian(row.AsSpan(2 * i), samples[i]);
        return row;
    }

    /// <summary>One row of sub-byte samples (1, 2 or 4 bits), first sample in the high bits, padded to a byte.</summary>
    public static byte[] RowPacked(int bits, params int[] samples)
    {
        var row = new byte[(samples.Length * bits + 7) / 8];
        for (int i = 0; i < samples.Length; i++)
        {
            int bit = i * bits;
            row[bit / 8] |= (byte)(samples[i] << (8 - bits - bit % 8));
        }
        return row;
    }

    static void Chunk(Stream png, string type, byte[] data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
        png.Write(word);
        var typeAndData = Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
        png.Write(typeAndData);
        BinaryPrimitives.WriteUInt32BigEndian(word, Crc32(typeAndData));
        png.Write(word);
    }

    static readonly uint[] crcTable = MakeTable();

    /// <summary>CRC-32 with the reflected polynomial 0xEDB88320, initial and final XOR 0xFFFFFFFF, as PNG uses.</summary>
    public static uint Crc32(ReadOnlySpan<byte> bytes)
    {
        uint c = 0xFFFFFFFF;
        foreach (byte b in bytes) c = crcTable[(c ^ b) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFF;
    }

    static uint[] MakeTable()
    {
        var t = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
            t[n] = c;
        }
        return t;
    }
}
