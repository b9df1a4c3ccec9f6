using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Xception.Gpu.Data;
using Xception.Gpu.IO;
using Xception.Gpu.Tests.Data;
using Xception.Gpu.Tests.IO;
using Xunit;

namespace Xception.Gpu.Tests.BadInput;

/// <summary>
/// Hostile data files built here, one per way a parser can be pushed to allocate or misreport: each must be
/// refused with the parser's own one-line message, and where size is the attack, with little memory allocated.
/// </summary>
public class DataBadInputTests
{
    /// <summary>Managed bytes <paramref name="action"/> allocates on this thread, and the exception it throws.</summary>
    static (T Error, long Allocated) Refused<T>(Action action) where T : Exception
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<T>(action);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.DoesNotContain('\n', e.Message);
        return (e, allocated);
    }

    static byte[] GzipSmallest(byte[] data)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.SmallestSize, leaveOpen: true)) gz.Write(data);
        return ms.ToArray();
    }

    // ---- IDX ----

    [Fact]
    public void IdxGzipBombBehindASmallHeaderIsRefusedWithoutInflatingIt()
    {
        using var dir = new TempDir();
        // A valid header for 2 images of 2x2 (8 bytes of data), then 16 MB of zeros: compresses to a few KB.
        var inflated = new byte[16 + 8 + (16 << 20)];
        DataFiles.Idx(IdxSource.ImagesMagic, [2, 2, 2], new byte[8]).CopyTo(inflated, 0);
        var bomb = dir.Write("bomb.gz", GzipSmallest(inflated));
        Assert.InRange(new FileInfo(bomb).Length, 1, 64 << 10);
        var labels = dir.Write("labels", DataFiles.Idx(IdxSource.LabelsMagic, [2], [0, 1]));

        var (e, allocated) = Refused<DataException>(() => new IdxSource(bomb, labels));
        Assert.Equal($"images file '{bomb}' decompresses to more than the 24 bytes its header declares (16-byte header, 2 x 2 x 2 bytes of data); expected exactly that many", e.Message);
        Assert.Equal(bomb, e.Path);
        Assert.True(allocated < 1 << 20, $"allocated {allocated:N0} bytes refusing a 16 MB gzip bomb");
    }

    [Fact]
    public void IdxGzipHeaderDeclaringMoreThanDeflateCanHoldIsRefusedBeforeInflating()
    {
        using var dir = new TempDir();
        // Fashion-MNIST's header (60000 x 28 x 28 = 47 MB) on a few hundred bytes of gzip: impossible at 1032:1.
        var gz = DataFiles.Gzip(DataFiles.Idx(IdxSource.ImagesMagic, [60000, 28, 28], new byte[100]));
        var p = dir.Write("images.gz", gz);
        var labels = dir.Write("labels", DataFiles.Idx(IdxSource.LabelsMagic, [1], [0]));
        var (e, allocated) = Refused<DataException>(() => new IdxSource(p, labels));
        Assert.Equal($"images file '{p}' is a truncated or corrupt gzip file: its header promises 60000 x 28 x 28 = 47040000 bytes of data, " +
            $"more than the {1032L * gz.Length} bytes a {gz.Length}-byte gzip file can hold", e.Message);
        Assert.True(allocated < 256 << 10, $"allocated {allocated:N0} bytes");
    }

    [Fact]
    public void IdxGzipThatEndsBeforeItsDeclaredDataAllocatesLittle()
    {
        using var dir = new TempDir();
        // 256 KB declared, 1000 (incompressible) bytes present: a file large enough that 1032:1 does not rule it out.
        var noise = new byte[1000];
        new Random(5).NextBytes(noise);
        var p = dir.Write("images.gz", DataFiles.Gzip(DataFiles.Idx(IdxSource.ImagesMagic, [256, 32, 32], noise)));
        var labels = dir.Write("labels", DataFiles.Idx(IdxSource.LabelsMagic, [1], [0]));
        var (e, allocated) = Refused<DataException>(() => new IdxSource(p, labels));
        Assert.Equal($"images file '{p}' is a truncated or corrupt gzip file: it decompresses to 1016 bytes, its header promises 256 x 32 x 32 = 262144 bytes of data after the 16-byte header", e.Message);
        Assert.True(allocated < 512 << 10, $"allocated {allocated:N0} bytes for 256 KB declared");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void IdxDimensionsWhoseProductOverflowsAreRefusedAtTheHeader(bool gzip)
    {
        using var dir = new TempDir();
        var header = DataFiles.Idx(IdxSource.ImagesMagic, [int.MaxValue, int.MaxValue, int.MaxValue], []);
        var p = dir.Write("images", gzip ? DataFiles.Gzip(header) : header);
        var labels = dir.Write("labels", DataFiles.Idx(IdxSource.LabelsMagic, [1], [0]));
        var (e, allocated) = Refused<DataException>(() => new IdxSource(p, labels));
        Assert.Equal($"images file '{p}' declares 2147483647 x 2147483647 x 2147483647 bytes of data, more than the 2147483591 bytes one data set file may hold", e.Message);
        Assert.True(allocated < 128 << 10, $"allocated {allocated:N0} bytes");

        // 65536^3 = 2^48 would also wrap a 32-bit product to 0; it is refused the same way.
        var wrap = dir.Write("wrap", DataFiles.Idx(IdxSource.ImagesMagic, [65536, 65536, 65536], []));
        Assert.Equal($"images file '{wrap}' declares 65536 x 65536 x 65536 bytes of data, more than the 2147483591 bytes one data set file may hold",
            Refused<DataException>(() => new IdxSource(wrap, labels)).Error.Message);
    }

    [Fact]
    public void IdxDimensionAboveInt32AndLargeDeclaredSizesOnSmallFiles()
    {
        using var dir = new TempDir();
        var labels = dir.Write("labels", DataFiles.Idx(IdxSource.LabelsMagic, [1], [0]));
        var neg = DataFiles.Idx(IdxSource.ImagesMagic, [1, 1, 1], [0]);
        BinaryPrimitives.WriteUInt32BigEndian(neg.AsSpan(8), 0xFFFFFFFF);
        var p = dir.Write("neg", neg);
        Assert.Equal($"images file '{p}' has dimension 1 of size 4294967295; expected at most 2147483647",
            Refused<DataException>(() => new IdxSource(p, labels)).Error.Message);

        // 1 GB declared on a 20-byte plain file: refused against the file's length, nothing allocated for it.
        var big = dir.Write("big", DataFiles.Idx(IdxSource.ImagesMagic, [1024, 1024, 1024], [1, 2, 3, 4]));
        var (e, allocated) = Refused<DataException>(() => new IdxSource(big, labels));
        Assert.Equal($"images file '{big}' is truncated: its header promises 1024 x 1024 x 1024 = 1073741824 bytes of data, found 4", e.Message);
        Assert.True(allocated < 64 << 10, $"allocated {allocated:N0} bytes");

        // A zero dimension after huge ones is an empty data set, not an overflow.
        var zero = dir.Write("zero", DataFiles.Idx(IdxSource.ImagesMagic, [int.MaxValue, int.MaxValue, 0], []));
        Assert.Equal($"images file '{zero}' holds {int.MaxValue}x0 images; expected a positive size",
            Refused<DataException>(() => new IdxSource(zero, labels)).Error.Message);
    }

    [Fact]
    public void IdxGzipWithACutHeaderAndAFolder()
    {
        using var dir = new TempDir();
        var labels = dir.Write("labels", DataFiles.Idx(IdxSource.LabelsMagic, [1], [0]));
        var p = dir.Write("short.gz", DataFiles.Gzip([0, 0, 8, 3, 0, 0]));
        Assert.Equal($"images file '{p}' is a truncated or corrupt gzip file: it decompresses to 6 bytes, less than the 16-byte IDX images header",
            Refused<DataException>(() => new IdxSource(p, labels)).Error.Message);
        Directory.CreateDirectory(dir["folder"]);
        Assert.Equal($"images file '{dir["folder"]}' is a folder; expected an IDX images file",
            Refused<DataException>(() => new IdxSource(dir["folder"], labels)).Error.Message);
    }

    // ---- .npy ----

    static readonly byte[] NpyMagic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>A version 1.0 .npy file with <paramref name="header"/> as its dictionary and <paramref name="dataBytes"/> after it.</summary>
    static byte[] NpyV1(string header, int dataBytes = 0)
    {
        var h = Encoding.Latin1.GetBytes(header + "\n");
        var b = new byte[10 + h.Length + dataBytes];
        NpyMagic.CopyTo(b, 0);
        b[6] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(8), (ushort)h.Length);
        h.CopyTo(b, 10);
        return b;
    }

    [Fact]
    public void NpyShapeWhoseProductOverflowsIsRefusedBeforeAllocating()
    {
        using var dir = new TempDir();
        var p = dir.Write("a.npy", NpyV1("{'descr': '<f4', 'fortran_order': False, 'shape': (2147483647, 2147483647, 2147483647, 2147483647), }", 64));
        var (e, allocated) = Refused<NpyException>(() => Npy.Read(p));
        Assert.Equal($"npy file '{p}' holds shape (2147483647, 2147483647, 2147483647, 2147483647): more than the 2147483591 values one array can hold", e.Message);
        Assert.True(allocated < 64 << 10, $"allocated {allocated:N0} bytes");

        // Within one array's limit but beyond the file: refused against the file's length.
        var q = dir.Write("b.npy", NpyV1("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 100), }", 16));
        (e, allocated) = Refused<NpyException>(() => Npy.Read(q));
        Assert.Equal($"npy file '{q}' is truncated: shape (1000000, 100) of '<f8' needs 800000000 data bytes, found 16", e.Message);
        Assert.True(allocated < 64 << 10, $"allocated {allocated:N0} bytes for 800 MB declared");
    }

    [Theory]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", "expected a dimension (a non-negative integer) at offset 54")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999,), }", "dimension at offset 51 is larger than 2147483647")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': [[[(((}", "expected '}' at offset 69")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': ((2,),), }", "expected a dimension (a non-negative integer) at offset 51")]
    [InlineData("{'descr': '<f4', 'fortran_order': Nope, 'shape': (2,), }", "expected True or False at offset 34")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, }", "it lacks one of the keys 'descr', 'fortran_order' and 'shape'")]
    [InlineData("{'descr': '<f4", "a string is not closed")]
    public void NpyHostileHeadersAreMalformedHeaderErrors(string header, string why)
    {
        using var dir = new TempDir();
        var p = dir.Write("h.npy", NpyV1(header, 64));
        var e = Refused<NpyException>(() => Npy.Read(p)).Error;
        Assert.StartsWith($"npy file '{p}' has a malformed header ({why}): ", e.Message);
    }

    [Fact]
    public void NpyHeaderTextWithNewlinesStaysOnOneLine()
    {
        using var dir = new TempDir();
        var p = dir.Write("nl.npy", NpyV1("{'descr': '<f\n4', 'fortran_order': False, 'shape': (2,), }", 8));
        Assert.StartsWith($"npy file '{p}' has dtype '<f\\u000A4': supported are '<f4', ",
            Refused<NpyException>(() => Npy.Read(p)).Error.Message);
        var q = dir.Write("nl2.npy", NpyV1("{'descr':\n\n '<f4', 'fortran_order':\r False, 'shape': (2,) 'x'}", 8));
        Assert.Equal($"npy file '{q}' has a malformed header (expected '}}' at offset 58): {{'descr':\\u000A\\u000A '<f4', 'fortran_order':\\u000D False, 'shape': (2,) 'x'}}",
            Refused<NpyException>(() => Npy.Read(q)).Error.Message);
    }

    [Fact]
    public void NpyVersion2HeaderLengths()
    {
        using var dir = new TempDir();
        // A 4 GB header length on a short file: refused against the file's length before any allocation.
        var b = new byte[64];
        NpyMagic.CopyTo(b, 0);
        b[6] = 2;
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(8), uint.MaxValue);
        var p = dir.Write("v2.npy", b);
        var (e, allocated) = Refused<NpyException>(() => Npy.Read(p));
        Assert.Equal($"npy file '{p}' is truncated: its header needs 4294967307 bytes, the file has 64", e.Message);
        Assert.True(allocated < 64 << 10, $"allocated {allocated:N0} bytes");

        // A 2 MiB header the file really holds: over the stated 1 MiB limit, refused without reading it.
        var big = new byte[12 + (2 << 20)];
        b.AsSpan(0, 8).CopyTo(big);
        big[6] = 3;
        BinaryPrimitives.WriteUInt32LittleEndian(big.AsSpan(8), 2 << 20);
        big.AsSpan(12).Fill((byte)' ');
        var q = dir.Write("v3.npy", big);
        (e, allocated) = Refused<NpyException>(() => Npy.Read(q));
        Assert.Equal($"npy file '{q}' declares a 2097152-byte header; expected at most 1048576 bytes (NumPy writes a few hundred)", e.Message);
        Assert.True(allocated < 64 << 10, $"allocated {allocated:N0} bytes");
    }

    // ---- CIFAR-10 ----

    [Fact]
    public void CifarFolderAndOversizedFile()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["data_batch_1.bin"]);
        Assert.Equal($"CIFAR-10 batch file '{dir["data_batch_1.bin"]}' is a folder; expected a .bin batch file such as data_batch_1.bin",
            Refused<DataException>(() => new Cifar10Source([dir["data_batch_1.bin"]])).Error.Message);

        // A sparse file of whole records just over one array's limit: refused by its length, not by reading it.
        var huge = dir["huge.bin"];
        using (var fs = File.Create(huge)) fs.SetLength(Cifar10Source.MaxFileBytes + Cifar10Source.RecordSize);
        var (e, allocated) = Refused<DataException>(() => new Cifar10Source([huge]));
        Assert.Equal($"CIFAR-10 batch file '{huge}' has {Cifar10Source.MaxFileBytes + 3073} bytes, more than the {Cifar10Source.MaxFileBytes} one batch file may hold; " +
            "expected batches of 10000 records (30730000 bytes)", e.Message);
        Assert.True(allocated < 64 << 10, $"allocated {allocated:N0} bytes");

        // Not a whole number of records: refused by length before the 3 MB are read.
        var odd = dir["odd.bin"];
        using (var fs = File.Create(odd)) fs.SetLength(1000 * 3073 + 1);
        (e, allocated) = Refused<DataException>(() => new Cifar10Source([odd]));
        Assert.Equal($"CIFAR-10 batch file '{odd}' has 3073001 bytes, not a whole number of 3073-byte records (1 label byte + 32x32x3 pixels)", e.Message);
        Assert.True(allocated < 64 << 10, $"allocated {allocated:N0} bytes");
    }

    [Fact]
    public void CifarLabelOutOfRangeInALaterFile()
    {
        using var dir = new TempDir();
        var good = dir.Write("a.bin", DataFiles.CifarRecord(9, DataFiles.Pattern(32, 32, 0)));
        var bad = dir.Write("b.bin", [.. DataFiles.CifarRecord(0, DataFiles.Pattern(32, 32, 1)), .. DataFiles.CifarRecord(255, DataFiles.Pattern(32, 32, 2))]);
        var e = Refused<DataException>(() => new Cifar10Source([good, bad])).Error;
        Assert.Equal($"CIFAR-10 batch file '{bad}' record 1 has label 255; expected 0 to 9", e.Message);
        Assert.Equal(bad, e.Path);
    }

    // ---- list file ----

    [Fact]
    public void ListFileEntriesThatAreFoldersOrAbsent()
    {
        using var dir = new TempDir();
        DataFiles.Png(dir, "a.png", 2, 2, DataFiles.Pattern(2, 2, 0));
        Directory.CreateDirectory(dir["sub"]);
        var folder = dir.Write("folder.txt", "a.png 0\nsub 1\n"u8.ToArray());
        Assert.Equal($"list file '{folder}' line 2: image '{dir["sub"]}' is a folder; expected an image file (relative paths are relative to '{dir.Path}')",
            Refused<DataException>(() => new ListFileSource(folder)).Error.Message);
        var absent = dir.Write("absent.txt", "# header\na.png 0\nb.png 1\nc.png 1\n\nd.png 0\n"u8.ToArray());
        Assert.Equal($"list file '{absent}' line 3: image '{dir["b.png"]}' not found (and 2 more entries like it); expected an image file (relative paths are relative to '{dir.Path}')",
            Refused<DataException>(() => new ListFileSource(absent)).Error.Message);
        Assert.Equal($"list file '{dir["sub"]}' is a folder; expected a text file of lines 'path label1 label2 ...'",
            Refused<DataException>(() => new ListFileSource(dir["sub"])).Error.Message);
    }

    [Fact]
    public void ListFileHugeLineIsRefusedBeforeItIsHeld()
    {
        using var dir = new TempDir();
        DataFiles.Png(dir, "a.png", 2, 2, DataFiles.Pattern(2, 2, 0));
        var text = "a.png 0\na.png " + string.Join(' ', Enumerable.Repeat("1", 4 << 20)) + "\n";   // one 8 MB line
        var p = dir.Write("huge.txt", Encoding.ASCII.GetBytes(text));
        var (e, allocated) = Refused<DataException>(() => new ListFileSource(p));
        Assert.Equal($"list file '{p}' line 2 is longer than 65536 characters; expected lines 'path label1 label2 ...'", e.Message);
        Assert.True(allocated < 2 << 20, $"allocated {allocated:N0} bytes for an 8 MB line");
    }

    [Fact]
    public void ListFileAbsurdLabelCounts()
    {
        using var dir = new TempDir();
        DataFiles.Png(dir, "a.png", 2, 2, DataFiles.Pattern(2, 2, 0));
        // 65537 different names: one more class than the limit an index list has.
        var sb = new StringBuilder();
        for (int i = 0; i < 65537; i++) sb.Append("a.png n").Append(i).Append('\n');
        var p = dir.Write("names.txt", Encoding.ASCII.GetBytes(sb.ToString()));
        Assert.Equal($"list file '{p}' names 65537 different labels; expected at most 65536 classes",
            Refused<DataException>(() => new ListFileSource(p)).Error.Message);

        // Many labels on a line within the line limit are fine; duplicates collapse.
        var many = dir.Write("many.txt", Encoding.ASCII.GetBytes("a.png " + string.Join(' ', Enumerable.Repeat("7 3", 5000)) + "\n"));
        var src = new ListFileSource(many);
        Assert.Equal([3, 7], src.LabelsOf(0));
        Assert.Equal(8, src.Classes);

        // A .csv line of separators only is skipped like an empty line, not an index error.
        var csv = dir.Write("l.csv", ",,,\na.png,1\n"u8.ToArray());
        Assert.Equal(1, new ListFileSource(csv).Count);
    }
}
