using System.Buffers.Binary;
using System.Text;
using Xception.Gpu.IO;
using Xunit;

namespace Xception.Gpu.Tests.IO;

public class NpyTests
{
    /// <summary>
    /// A .npy file built by hand: magic, version, header length (2 bytes for 1.0, 4 for 2.0 and 3.0), header
    /// padded with spaces to a multiple of 64 and ended by a newline, then the data. Independent of
    /// <see cref="Npy.Write"/>, so it checks the reader against the format itself.
    /// </summary>
    static byte[] HandNpy(int major, string header, byte[] data)
    {
        int prefix = major == 1 ? 10 : 12;
        var text = Encoding.UTF8.GetBytes(header);
        int total = (prefix + text.Length + 1 + 63) / 64 * 64;
        var bytes = new byte[total + data.Length];
        bytes[0] = 0x93;
        Encoding.ASCII.GetBytes("NUMPY").CopyTo(bytes, 1);
        bytes[6] = (byte)major;
        if (major == 1) BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(8), (ushort)(total - prefix));
        else BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), (uint)(total - prefix));
        text.CopyTo(bytes, prefix);
        bytes.AsSpan(prefix + text.Length, total - prefix - text.Length - 1).Fill((byte)' ');
        bytes[total - 1] = (byte)'\n';
        data.CopyTo(bytes, total);
        return bytes;
    }

    static byte[] Bytes<T>(T[] values, int size, Action<byte[], int, T> put)
    {
        var b = new byte[size * values.Length];
        for (int i = 0; i < values.Length; i++) put(b, size * i, values[i]);
        return b;
    }

    static byte[] F4(params float[] v) => Bytes(v, 4, (b, o, x) => BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan(o), x));

    [Theory]
    [InlineData(new[] { 2, 3, 4 })]
    [InlineData(new[] { 7 })]
    [InlineData(new int[0])]
    [InlineData(new[] { 3, 0, 5 })]
    [InlineData(new[] { 1, 5, 5, 3 })]
    public void RoundTripKeepsShapeAndEveryBit(int[] shape)
    {
        using var dir = new TempDir();
        int n = shape.Aggregate(1, (a, d) => a * d);
        var data = TestData.Uniform(n, 11, -1e3f, 1e3f);
        if (n >= 4) { data[0] = float.NaN; data[1] = -0f; data[2] = float.PositiveInfinity; data[3] = float.Epsilon; }
        var path = dir["a.npy"];
        Npy.Write(path, data, shape);
        var back = Npy.Read(path);
        Assert.Equal(shape, back.Shape);
        Check.Equal("bits", Array.ConvertAll(back.Data, BitConverter.SingleToInt32Bits), Array.ConvertAll(data, BitConverter.SingleToInt32Bits));
    }

    [Theory]
    [InlineData(new[] { 2, 3 }, 128)]
    [InlineData(new int[0], 128)]
    [InlineData(new[] { 1234567, 8 }, 128)]
    [InlineData(new[] { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 }, 192)]
    public void HeaderIsNumpysVersion10PaddedTo64(int[] shape, int dataStart)
    {
        using var dir = new TempDir();
        var path = dir["h.npy"];
        int n = shape.Aggregate(1, (a, d) => a * d);
        Npy.Write(path, new float[n], shape);
        var bytes = File.ReadAllBytes(path);
        Assert.Equal([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0], bytes[..8]);
        int start = 10 + BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8));
        Assert.Equal(0, start % 64);
        Assert.Equal(dataStart, start);   // where numpy.save puts it for these shapes
        Assert.Equal(4L * n, bytes.Length - start);
        var header = Encoding.ASCII.GetString(bytes, 10, start - 10);
        var shapeText = shape.Length == 0 ? "()" : "(" + string.Join(", ", shape) + (shape.Length == 1 ? ",)" : ")");
        Assert.StartsWith($"{{'descr': '<f4', 'fortran_order': False, 'shape': {shapeText}, }}", header);
        Assert.EndsWith("\n", header);
        Assert.Equal("", header[(header.IndexOf('}') + 1)..^1].Trim(' '));
    }

    [Fact]
    public void ReadsVersion20And30Headers()
    {
        using var dir = new TempDir();
        var v2 = dir.Write("v2.npy", HandNpy(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", F4(1, 2, 3, 4)));
        var a = Npy.Read(v2);
        Assert.Equal([2, 2], a.Shape);
        Assert.Equal([1f, 2f, 3f, 4f], a.Data);

        var v3 = dir.Write("v3.npy", HandNpy(3, "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (3,), \"note\": 'é', }", F4(5, 6, 7)));
        var b = Npy.Read(v3);
        Assert.Equal([3], b.Shape);
        Assert.Equal([5f, 6f, 7f], b.Data);
    }

    [Fact]
    public void ConvertsF8U1AndI4ToFloat()
    {
        using var dir = new TempDir();
        var f8 = Bytes([0.1, -2.5, 1e300, 3.0], 8, (b, o, x) => BinaryPrimitives.WriteDoubleLittleEndian(b.AsSpan(o), x));
        var a = Npy.Read(dir.Write("f8.npy", HandNpy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }", f8)));
        Assert.Equal([2, 2], a.Shape);
        Assert.Equal([0.1f, -2.5f, float.PositiveInfinity, 3f], a.Data);

        var u1 = Npy.Read(dir.Write("u1.npy", HandNpy(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", [0, 128, 255])));
        Assert.Equal([0f, 128f, 255f], u1.Data);

        var i4 = Bytes([-7, 0, 16777217], 4, (b, o, x) => BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(o), x));
        var c = Npy.Read(dir.Write("i4.npy", HandNpy(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (1, 3), }", i4)));
        Assert.Equal([1, 3], c.Shape);
        Assert.Equal([-7f, 0f, 16777216f], c.Data);   // 2^24 + 1 rounds to the nearest float32
    }

    [Fact]
    public void ReadsPython2StyleHeader()
    {
        using var dir = new TempDir();
        var p = dir.Write("py2.npy", HandNpy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1L, 2L)}", F4(8, 9)));
        Assert.Equal([1, 2], Npy.Read(p).Shape);
    }

    static NpyException Fails(string path)
    {
        var e = Assert.Throws<NpyException>(() => Npy.Read(path));
        Assert.DoesNotContain('\n', e.Message);
        Assert.Equal(path, e.Path);
        return e;
    }

    [Fact]
    public void MissingFile()
    {
        using var dir = new TempDir();
        var p = dir["nope.npy"];
        Assert.Equal($"npy file '{p}' not found", Fails(p).Message);
    }

    [Fact]
    public void BadMagic()
    {
        using var dir = new TempDir();
        var p = dir.Write("zip.npy", [(byte)'P', (byte)'K', 3, 4, 20, 0, 0, 0, 8, 0, 0, 0]);
        Assert.Equal($"'{p}' is not a .npy file: it does not start with the magic string \\x93NUMPY", Fails(p).Message);
        var empty = dir.Write("empty.npy", []);
        Assert.Equal($"'{empty}' is not a .npy file: it does not start with the magic string \\x93NUMPY", Fails(empty).Message);
    }

    [Fact]
    public void TruncatedData()
    {
        using var dir = new TempDir();
        var p = dir.Write("short.npy", HandNpy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", new byte[10]));
        Assert.Equal($"npy file '{p}' is truncated: shape (2, 3) of '<f4' needs 24 data bytes, found 10", Fails(p).Message);
    }

    [Fact]
    public void TruncatedHeader()
    {
        using var dir = new TempDir();
        var whole = HandNpy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", F4(1, 2));
        var p = dir.Write("cut.npy", whole[..40]);
        Assert.Equal($"npy file '{p}' is truncated: its header needs 128 bytes, the file has 40", Fails(p).Message);
    }

    [Theory]
    [InlineData("'>f4'", "'>f4'")]
    [InlineData("'<c8'", "'<c8'")]
    [InlineData("[('x', '<f4'), ('y', '<i4')]", "[('x', '<f4'), ('y', '<i4')]")]
    public void UnsupportedDtype(string descr, string shown)
    {
        using var dir = new TempDir();
        var p = dir.Write("dt.npy", HandNpy(1, $"{{'descr': {descr}, 'fortran_order': False, 'shape': (1,), }}", new byte[8]));
        var quoted = shown.StartsWith('\'') ? shown : $"'{shown}'";
        Assert.Equal($"npy file '{p}' has dtype {quoted}: supported are '<f4', '<f8', '|u1', '<i4' (converted to float32)", Fails(p).Message);
    }

    [Fact]
    public void FortranOrder()
    {
        using var dir = new TempDir();
        var p = dir.Write("f.npy", HandNpy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", F4(1, 2, 3, 4)));
        Assert.Equal($"npy file '{p}' is in Fortran order (fortran_order True): only C order is supported; save np.ascontiguousarray(a)", Fails(p).Message);
    }

    [Fact]
    public void UnknownVersionAndMalformedHeader()
    {
        using var dir = new TempDir();
        var v9 = HandNpy(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", F4(1));
        v9[6] = 9;
        var p = dir.Write("v9.npy", v9);
        Assert.Equal($"npy file '{p}' has format version 9.0: supported are 1.0, 2.0 and 3.0", Fails(p).Message);

        var q = dir.Write("bad.npy", HandNpy(1, "{'descr': '<f4', 'shape': (2,), }", F4(1, 2)));
        Assert.Equal($"npy file '{q}' has a malformed header (it lacks one of the keys 'descr', 'fortran_order' and 'shape'): {{'descr': '<f4', 'shape': (2,), }}",
            Fails(q).Message);
    }

    [Fact]
    public void WriteChecksTheShape()
    {
        using var dir = new TempDir();
        var p = dir["w.npy"];
        var e = Assert.Throws<NpyException>(() => Npy.Write(p, new float[5], [2, 3]));
        Assert.Equal($"cannot write npy file '{p}': shape (2, 3) holds 6 values, 5 were given", e.Message);
        Assert.False(File.Exists(p));
    }
}
