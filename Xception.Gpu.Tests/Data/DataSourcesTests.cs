using Xception.Gpu.Data;
using Xception.Gpu.Tests.IO;
using Xunit;

namespace Xception.Gpu.Tests.Data;

/// <summary>Opening data sets from the strings users type: names, folders of each kind, list files, and mistakes.</summary>
public class DataSourcesTests
{
    [Fact]
    public void Synthetic()
    {
        var d = DataSources.Open("synthetic");
        Assert.Equal(10000, d.Train.Count);
        Assert.Equal(2000, d.Test!.Count);
        var n = DataSources.Open("Synthetic:500", seed: 4);
        Assert.Equal((500, 100, 10), (n.Train.Count, n.Test!.Count, n.Train.Classes));
        Assert.NotEqual(n.Train.Load(0).Pixels, n.Test.Load(0).Pixels);   // the test split is not a copy of the training images
        Assert.Equal(n.Train.Load(1).Pixels, DataSources.Open("synthetic:500", seed: 4).Train.Load(1).Pixels);
        Assert.Equal(1, DataSources.Open("synthetic:3").Test!.Count);
        Assert.Equal("data set 'synthetic:lots': 'lots' is not a positive image count; expected synthetic:N, e.g. synthetic:2000",
            Assert.Throws<DataException>(() => DataSources.Open("synthetic:lots")).Message);
        Assert.Throws<DataException>(() => DataSources.Open("synthetic:0"));
    }

    [Fact]
    public void UnknownSpecOrMissingPath()
    {
        var e = Assert.Throws<DataException>(() => DataSources.Open("imagenet"));
        Assert.Equal("unknown data set 'imagenet': no such file or folder; expected synthetic, synthetic:N, fashion-mnist, mnist, " +
            "a folder of IDX files (train-images-idx3-ubyte[.gz], ...), a folder of CIFAR-10 batches (data_batch_*.bin), " +
            "a folder with one subfolder per class, or a list file (.txt, .csv, .lst)", e.Message);
        Assert.Equal("imagenet", e.Path);
        using var dir = new TempDir();
        var missing = dir["gone"];
        Assert.StartsWith($"unknown data set '{missing}': no such file or folder; expected synthetic", Assert.Throws<DataException>(() => DataSources.Open(missing)).Message);
        var weights = dir.Write("w.h5", [1]);
        Assert.Equal($"data set '{weights}' is a file but not a list file; {DataSources.Accepted}",
            Assert.Throws<DataException>(() => DataSources.Open(weights)).Message);
        var flat = dir["flat"];
        DataFiles.Png(dir, "flat/a.png", 2, 2, DataFiles.Pattern(2, 2, 0));
        Assert.Equal($"data set folder '{flat}' has files but no IDX, CIFAR-10 or class subfolders; {DataSources.Accepted}",
            Assert.Throws<DataException>(() => DataSources.Open(flat)).Message);
    }

    [Fact]
    public void MnistNeedsAFolder()
    {
        if (Directory.Exists(DataSources.MnistFolder)) Assert.Skip($"{DataSources.MnistFolder} exists on this machine");
        Assert.Equal("data set 'mnist': folder '/usr/share/datasets/mnist' not found; no Debian package provides MNIST; " +
            "pass the folder holding train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]",
            Assert.Throws<DataException>(() => DataSources.Open("mnist")).Message);
    }

    [Fact]
    public void IdxFolderWithTrainAndTest()
    {
        using var dir = new TempDir();
        var (ti, tl) = DataFiles.Mnist(6, 4, 4, [0, 1, 2, 0, 1, 2]);
        var (si, sl) = DataFiles.Mnist(2, 4, 4, [2, 1]);
        dir.Write("train-images-idx3-ubyte.gz", DataFiles.Gzip(ti));
        dir.Write("train-labels-idx1-ubyte.gz", DataFiles.Gzip(tl));
        dir.Write("t10k-images.idx3-ubyte", si);   // the dotted names of some MNIST copies
        dir.Write("t10k-labels.idx1-ubyte", sl);
        var d = DataSources.Open(dir.Path);
        Assert.IsType<IdxSource>(d.Train);
        Assert.Equal((6, 2, 3), (d.Train.Count, d.Test!.Count, d.Train.Classes));
        Assert.Equal(2, d.Test.Load(0).Label);

        File.Delete(dir["t10k-labels.idx1-ubyte"]);
        Assert.Equal($"folder '{dir.Path}' has 't10k-images.idx3-ubyte' but no t10k-labels-idx1-ubyte[.gz]; expected both",
            Assert.Throws<DataException>(() => DataSources.Open(dir.Path)).Message);
        File.Delete(dir["t10k-images.idx3-ubyte"]);
        Assert.Null(DataSources.Open(dir.Path).Test);
    }

    [Fact]
    public void CifarFolder()
    {
        using var dir = new TempDir();
        var rec = DataFiles.CifarRecord(4, DataFiles.Pattern(32, 32, 0));
        dir.Write("data_batch_2.bin", [.. rec, .. rec]);
        dir.Write("data_batch_1.bin", rec);
        dir.Write("test_batch.bin", rec);
        dir.Write("batches.meta.txt", "airplane\n"u8.ToArray());
        var d = DataSources.Open(dir.Path);
        Assert.Equal((3, 1), (d.Train.Count, d.Test!.Count));
        Assert.Contains("data_batch_1.bin, data_batch_2.bin", d.Train.Description);
    }

    [Fact]
    public void ClassFolderAndListFile()
    {
        using var dir = new TempDir();
        DataFiles.Png(dir, "pets/cat/a.png", 2, 2, DataFiles.Pattern(2, 2, 0));
        DataFiles.Png(dir, "pets/dog/b.png", 2, 2, DataFiles.Pattern(2, 2, 1));
        var d = DataSources.Open(dir["pets"]);
        Assert.IsType<ImageFolderSource>(d.Train);
        Assert.Null(d.Test);
        Assert.Equal(["cat", "dog"], d.Train.ClassNames);
        var list = dir.Write("pets/labels.TXT", "cat/a.png 0 1\n"u8.ToArray());
        var l = DataSources.Open(list);
        Assert.IsType<ListFileSource>(l.Train);
        Assert.True(l.Train.MultiLabel);
    }

    /// <summary>The Debian package dataset-fashion-mnist installs the four gzipped IDX files; skipped, visibly, without it.</summary>
    [Fact]
    public void FashionMnistFromDebian()
    {
        if (!File.Exists(Path.Combine(DataSources.FashionMnistFolder, "train-images-idx3-ubyte.gz")))
            Assert.Skip($"Fashion-MNIST not installed in {DataSources.FashionMnistFolder} (apt-get install dataset-fashion-mnist)");
        var d = DataSources.Open("fashion-mnist");
        Assert.Equal((60000, 10000), (d.Train.Count, d.Test!.Count));
        Assert.Equal(10, d.Train.Classes);
        Assert.Equal(IdxSource.FashionMnistClasses, d.Train.ClassNames);
        var first = d.Train.Load(0);
        Assert.Equal((28, 28, 1), (first.Width, first.Height, first.Channels));
        Assert.Equal(9, first.Label);   // the first training image is an ankle boot
        var counts = new int[10];
        for (int i = 0; i < d.Test.Count; i++) counts[((IdxSource)d.Test).LabelOf(i)]++;
        Assert.All(counts, c => Assert.Equal(1000, c));   // the test split is balanced, 1000 per class
    }
}
