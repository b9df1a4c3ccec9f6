using Xception.Gpu.Data;
using Xception.Gpu.Tests.IO;
using Xunit;

namespace Xception.Gpu.Tests.Data;

/// <summary>Multi-label list files: integer labels, named labels, relative and absolute paths, and errors with line numbers.</summary>
public class ListFileSourceTests
{
    [Fact]
    public void IntegerLabels()
    {
        using var dir = new TempDir();
        var a = DataFiles.Png(dir, "imgs/a.png", 2, 3, DataFiles.Pattern(2, 3, 1));
        var b = DataFiles.Png(dir, "other/b.png", 2, 2, DataFiles.Pattern(2, 2, 2));
        Directory.CreateDirectory(dir["sets"]);
        var list = dir["sets/list.txt"];
        File.WriteAllText(list, $"# comment\n\n../imgs/a.png 4 1\t1\n  {b}\t0  \n../imgs/a.png\n");
        var src = new ListFileSource(list);
        Assert.True(src.MultiLabel);
        Assert.Equal(3, src.Count);
        Assert.Equal(5, src.Classes);
        Assert.Equal(["0", "1", "2", "3", "4"], src.ClassNames);
        Assert.Equal(Path.GetFullPath(a), Path.GetFullPath(src.Files[0]));
        Assert.Equal(b, src.Files[1]);
        var img = src.Load(0);
        Assert.Equal((2, 3, 3, -1), (img.Width, img.Height, img.Channels, img.Label));
        Assert.Equal([1, 4], img.Labels);
        Assert.Equal(DataFiles.Pattern(2, 3, 1), img.Pixels);
        Assert.Equal([0], src.Load(1).Labels);
        Assert.Empty(src.Load(2).Labels);   // a path with no labels: a negative example
    }

    [Fact]
    public void NamedLabelsAreSortedOrdinally()
    {
        using var dir = new TempDir();
        DataFiles.Png(dir, "a.png", 2, 2, DataFiles.Pattern(2, 2, 1));
        var list = dir.Write("list.lst", "a.png dog cat\na.png Zebra 1\na.png cat\n"u8.ToArray());
        var src = new ListFileSource(list);
        Assert.Equal(["1", "Zebra", "cat", "dog"], src.ClassNames);
        Assert.Equal([2, 3], src.LabelsOf(0));
        Assert.Equal([0, 1], src.LabelsOf(1));
        Assert.Equal([2], src.Load(2).Labels);
    }

    [Fact]
    public void CsvAcceptsCommas()
    {
        using var dir = new TempDir();
        DataFiles.Png(dir, "a.png", 2, 2, DataFiles.Pattern(2, 2, 1));
        var src = new ListFileSource(dir.Write("l.csv", "a.png,2,0\n"u8.ToArray()));
        Assert.Equal([0, 2], src.LabelsOf(0));
        Assert.Equal(3, src.Classes);
    }

    [Fact]
    public void Errors()
    {
        using var dir = new TempDir();
        var missing = dir["none.txt"];
        Assert.Equal($"list file '{missing}' not found", Assert.Throws<DataException>(() => new ListFileSource(missing)).Message);
        var empty = dir.Write("empty.txt", "# only a comment\n\n"u8.ToArray());
        Assert.Equal($"list file '{empty}' has no entries; expected lines 'path label1 label2 ...'",
            Assert.Throws<DataException>(() => new ListFileSource(empty)).Message);
        var negative = dir.Write("neg.txt", "a.png 1\n# x\nb.png 2 -3\n"u8.ToArray());
        Assert.Equal($"list file '{negative}' line 3: label '-3' is negative; expected a class index from 0 or a class name",
            Assert.Throws<DataException>(() => new ListFileSource(negative)).Message);
        var large = dir.Write("large.txt", "a.png 1\nb.png 99999999999\n"u8.ToArray());
        Assert.Equal($"list file '{large}' line 2: label '99999999999' is too large; expected a class index up to 65535",
            Assert.Throws<DataException>(() => new ListFileSource(large)).Message);
        var noLabels = dir.Write("nolabels.txt", "a.png\nb.png\n"u8.ToArray());
        Assert.Equal($"list file '{noLabels}' has no labels on any line; expected lines 'path label1 label2 ...'",
            Assert.Throws<DataException>(() => new ListFileSource(noLabels)).Message);
    }
}
