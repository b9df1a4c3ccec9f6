using System.Buffers.Binary;
using System.IO.Compression;
using StbImageWriteSharp;
using Xception.Gpu.Tests.IO;

namespace Xception.Gpu.Tests.Data;

/// <summary>Small data set files written at test time: PNGs, IDX files (plain or gzipped), CIFAR-10 records.</summary>
internal static class DataFiles
{
    /// <summary>RGB pixels whose values depend on (seed, pixel, channel), so every image and pixel differs.</summary>
    public static byte[] Pattern(int w, int h, int seed, int channels = 3)
    {
        var a = new byte[w * h * channels];
        for (int i = 0; i < a.Length; i++) a[i] = (byte)((37 * seed + 11 * i + 5 * (i % channels)) % 256);
        return a;
    }

    /// <summary>Writes an RGB PNG (lossless, so the decoded pixels are exactly <paramref name="rgb"/>).</summary>
    public static string Png(TempDir dir, string name, int w, int h, byte[] rgb)
    {
        var path = dir[name];
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var ms = new MemoryStream();
        new ImageWriter().WritePng(rgb, w, h, ColorComponents.RedGreenBlue, ms);
        File.WriteAllBytes(path, ms.ToArray());
        return path;
    }

    /// <summary>An IDX file: big-endian magic and sizes, then the bytes.</summary>
    public static byte[] Idx(uint magic, int[] dims, byte[] data)
    {
        var b = new byte[4 + 4 * dims.Length + data.Length];
        BinaryPrimitives.WriteUInt32BigEndian(b, magic);
        for (int d = 0; d < dims.Length; d++) BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(4 + 4 * d), dims[d]);
        data.CopyTo(b, 4 + 4 * dims.Length);
        return b;
    }

    public static byte[] Gzip(byte[] data)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(data);
        return ms.ToArray();
    }

    /// <summary>MNIST-style files for <paramref name="n"/> rows x cols images; image i's pixels are (i * 7 + p) mod 256.</summary>
    public static (byte[] Images, byte[] Labels) Mnist(int n, int rows, int cols, byte[] labels)
    {
        var pixels = new byte[n * rows * cols];
        for (int i = 0; i < n; i++)
            for (int p = 0; p < rows * cols; p++) pixels[i * rows * cols + p] = (byte)((i * 7 + p) % 256);
        return (Idx(0x803, [n, rows, cols], pixels), Idx(0x801, [n], labels));
    }

    /// <summary>One CIFAR-10 record: the label, then the R, G and B planes of <paramref name="rgb"/> (32x32 interleaved).</summary>
    public static byte[] CifarRecord(byte label, byte[] rgb)
    {
        var rec = new byte[3073];
        rec[0] = label;
        for (int i = 0; i < 1024; i++)
            for (int c = 0; c < 3; c++) rec[1 + c * 1024 + i] = rgb[3 * i + c];
        return rec;
    }
}
