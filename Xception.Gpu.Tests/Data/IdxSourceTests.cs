using Xception.Gpu.Data;
using Xception.Gpu.Tests.IO;
using Xunit;

namespace Xception.Gpu.Tests.Data;

/// <summary>MNIST-format IDX files written at test time, plain and gzipped, and every way they can be wrong.</summary>
public class IdxSourceTests
{
    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void ReadsPlainAndGzipped(bool gzipImages, bool gzipLabels)
    {
        using var dir = new TempDir();
        var (images, labels) = DataFiles.Mnist(5, 3, 4, [3, 0, 7, 7, 1]);
        // Names that lie about compression: gzip is recognised by its magic.
        var ip = dir.Write("images.gz", gzipImages ? DataFiles.Gzip(images) : images);
        var lp = dir.Write("labels", gzipLabels ? DataFiles.Gzip(labels) : labels);
        var src = new IdxSource(ip, lp);
        Assert.Equal((5, 3, 4), (src.Count, src.Rows, src.Cols));
        Assert.Equal(8, src.Classes);
        Assert.Equal(["0", "1", "2", "3", "4", "5", "6", "7"], src.ClassNames);
        Assert.False(src.MultiLabel);
        var img = src.Load(2);
        Assert.Equal((4, 3, 1, 7), (img.Width, img.Height, img.Channels, img.Label));
        Assert.Equal(Enumerable.Range(0, 12).Select(p => (byte)((2 * 7 + p) % 256)).ToArray(), img.Pixels);
        Assert.Equal(1, src.Load(4).Label);
        Assert.Equal(3, src.LabelOf(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => src.Load(5));
    }

    [Fact]
    public void FashionFolderGetsFashionNames()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["My-Fashion-Data"]);
        var (images, labels) = DataFiles.Mnist(2, 2, 2, [9, 0]);
        var src = new IdxSource(dir.Write("My-Fashion-Data/i", images), dir.Write("My-Fashion-Data/l", labels));
        Assert.Equal(10, src.Classes);
        Assert.Equal("T-shirt/top", src.ClassNames[0]);
        Assert.Equal("Ankle boot", src.ClassNames[9]);
        Assert.Equal(IdxSource.FashionMnistClasses, src.ClassNames);
    }

    [Fact]
    public void WrongMagicNamesTheFile()
    {
        using var dir = new TempDir();
        var (images, labels) = DataFiles.Mnist(2, 2, 2, [1, 0]);
        var ip = dir.Write("i", images);
        var lp = dir.Write("l", labels);
        Assert.Equal($"images file '{lp}' is not an IDX images file: expected magic 0x00000803, found magic 0x00000801",
            Assert.Throws<DataException>(() => new IdxSource(lp, ip)).Message);
        var tiny = dir.Write("t", [0, 0]);
        Assert.Equal($"labels file '{tiny}' is not an IDX labels file: expected magic 0x00000801, found 2 bytes",
            Assert.Throws<DataException>(() => new IdxSource(ip, tiny)).Message);
        var png = dir.Write("p.gz", DataFiles.Gzip([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]));
        Assert.Equal($"images file '{png}' is not an IDX images file: expected magic 0x00000803, found magic 0x89504E47",
            Assert.Throws<DataException>(() => new IdxSource(png, lp)).Message);
    }

    [Fact]
    public void CountMismatch()
    {
        using var dir = new TempDir();
        var (images, _) = DataFiles.Mnist(3, 2, 2, [1, 0, 1]);
        var ip = dir.Write("i", images);
        var lp = dir.Write("l", DataFiles.Idx(0x801, [2], [1, 0]));
        var e = Assert.Throws<DataException>(() => new IdxSource(ip, lp));
        Assert.Equal($"labels file '{lp}' holds 2 labels but images file '{ip}' holds 3 images; expected one label per image", e.Message);
        Assert.Equal(lp, e.Path);
    }

    [Fact]
    public void Truncated()
    {
        using var dir = new TempDir();
        var (images, labels) = DataFiles.Mnist(3, 2, 2, [1, 0, 1]);
        var lp = dir.Write("l", labels);
        var ip = dir.Write("i", images[..^5]);
        Assert.Equal($"images file '{ip}' is truncated: its header promises 3 x 2 x 2 = 12 bytes of data, found 7",
            Assert.Throws<DataException>(() => new IdxSource(ip, lp)).Message);
        var header = dir.Write("h", images[..9]);
        Assert.Equal($"images file '{header}' is truncated: its header needs 16 bytes, the file has 9",
            Assert.Throws<DataException>(() => new IdxSource(header, lp)).Message);
        var gz = DataFiles.Gzip(images);
        var cut = dir.Write("cut.gz", gz[..(gz.Length / 2)]);
        var e = Assert.Throws<DataException>(() => new IdxSource(cut, lp));
        Assert.StartsWith($"images file '{cut}' is a truncated or corrupt gzip file: it decompresses to ", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        var missing = dir["none"];
        Assert.Equal($"images file '{missing}' not found", Assert.Throws<DataException>(() => new IdxSource(missing, lp)).Message);
    }
}
