using Xception.Gpu.Data;
using Xception.Gpu.Tests.IO;
using Xunit;

namespace Xception.Gpu.Tests.Data;

/// <summary>CIFAR-10 binary records written at test time: planar R, G, B to interleaved pixels, numbering across files.</summary>
public class Cifar10SourceTests
{
    [Fact]
    public void ReadsRecordsAcrossFiles()
    {
        using var dir = new TempDir();
        var images = Enumerable.Range(0, 5).Select(i => DataFiles.Pattern(32, 32, i)).ToArray();
        byte[] labels = [6, 9, 0, 3, 1];
        var a = dir.Write("data_batch_1.bin", images[..3].Select((img, i) => DataFiles.CifarRecord(labels[i], img)).SelectMany(r => r).ToArray());
        var b = dir.Write("data_batch_2.bin", images[3..].Select((img, i) => DataFiles.CifarRecord(labels[3 + i], img)).SelectMany(r => r).ToArray());
        var src = new Cifar10Source([a, b]);
        Assert.Equal(5, src.Count);
        Assert.Equal(10, src.Classes);
        Assert.Equal(["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"], src.ClassNames);
        for (int i = 0; i < 5; i++)
        {
            var img = src.Load(i);
            Assert.Equal((32, 32, 3, labels[i]), (img.Width, img.Height, img.Channels, img.Label));
            Assert.Equal(images[i], img.Pixels);
        }
        // The first record's red plane starts at byte 1, green at 1025: pixel 0 is (R, G, B) from those planes.
        var raw = File.ReadAllBytes(a);
        Assert.Equal([raw[1], raw[1025], raw[2049]], src.Load(0).Pixels[..3]);
    }

    [Fact]
    public void Errors()
    {
        using var dir = new TempDir();
        var odd = dir.Write("data_batch_1.bin", new byte[2 * 3073 + 5]);
        Assert.Equal($"CIFAR-10 batch file '{odd}' has 6151 bytes, not a whole number of 3073-byte records (1 label byte + 32x32x3 pixels)",
            Assert.Throws<DataException>(() => new Cifar10Source([odd])).Message);
        var empty = dir.Write("empty.bin", []);
        Assert.Equal($"CIFAR-10 batch file '{empty}' has 0 bytes, not a whole number of 3073-byte records (1 label byte + 32x32x3 pixels)",
            Assert.Throws<DataException>(() => new Cifar10Source([empty])).Message);
        var rec = DataFiles.CifarRecord(0, DataFiles.Pattern(32, 32, 1));
        var badLabel = dir.Write("bad.bin", [.. rec, .. DataFiles.CifarRecord(10, DataFiles.Pattern(32, 32, 2))]);
        Assert.Equal($"CIFAR-10 batch file '{badLabel}' record 1 has label 10; expected 0 to 9",
            Assert.Throws<DataException>(() => new Cifar10Source([badLabel])).Message);
        var missing = dir["test_batch.bin"];
        Assert.Equal($"CIFAR-10 batch file '{missing}' not found", Assert.Throws<DataException>(() => new Cifar10Source([missing])).Message);
    }
}
