using Xception.Gpu.Data;
using Xception.Gpu.Tests.IO;
using Xunit;

namespace Xception.Gpu.Tests.Data;

/// <summary>Class folders indexed as Keras' image_dataset_from_directory indexes them, on PNGs written at test time.</summary>
public class ImageFolderSourceTests
{
    [Fact]
    public void ClassesAndFilesInKerasOrder()
    {
        using var dir = new TempDir();
        var root = Path.Combine(dir.Path, "data");
        // Python's sorted() on names: digits < upper case < '_' < lower case; "10" < "2" (no natural sort).
        string[] classes = ["b", "B", "a", "_x", "10", "2"];
        int seed = 0;
        foreach (var c in classes) DataFiles.Png(dir, $"data/{c}/img.png", 2, 2, DataFiles.Pattern(2, 2, seed++));
        // Within a class: recursive; folders by path, names ordinal; any letter case of the extension; others ignored.
        DataFiles.Png(dir, "data/a/b.png", 3, 2, DataFiles.Pattern(3, 2, 20));
        DataFiles.Png(dir, "data/a/A.PNG", 3, 2, DataFiles.Pattern(3, 2, 21));
        DataFiles.Png(dir, "data/a/a b.Jpeg", 3, 2, DataFiles.Pattern(3, 2, 22));   // a PNG named .Jpeg: decoded by content
        DataFiles.Png(dir, "data/a/sub/z.png", 3, 2, DataFiles.Pattern(3, 2, 23));
        DataFiles.Png(dir, "data/a/sub-x/y.gif.png", 3, 2, DataFiles.Pattern(3, 2, 24));
        DataFiles.Png(dir, "data/a/sub/deep/w.png", 3, 2, DataFiles.Pattern(3, 2, 25));
        File.WriteAllText(dir["data/a/notes.txt"], "not an image");
        File.WriteAllText(dir["data/a/sub/png"], "no extension");

        var src = new ImageFolderSource(root);
        Assert.Equal(["10", "2", "B", "_x", "a", "b"], src.ClassNames);
        Assert.Equal(6, src.Classes);
        Assert.False(src.MultiLabel);
        string A(string rel) => Path.Combine(root, "a", rel);
        // Folders sort by their whole path, as Keras sorts os.walk's roots: "a/sub" < "a/sub-x" < "a/sub/deep",
        // because '-' (0x2D) sorts before '/' (0x2F).
        var expectedA = new[] { A("A.PNG"), A("a b.Jpeg"), A("b.png"), A("img.png"), A("sub/z.png"), A("sub-x/y.gif.png"), A("sub/deep/w.png") };
        var inA = Enumerable.Range(0, src.Count).Where(i => src.LabelOf(i) == 4).Select(i => src.Files[i]).ToArray();
        Assert.Equal(expectedA, inA);
        Assert.Equal(12, src.Count);
        Assert.Equal(Path.Combine(root, "10", "img.png"), src.Files[0]);
        Assert.Equal(Path.Combine(root, "b", "img.png"), src.Files[^1]);

        int at = Array.IndexOf(src.Files.ToArray(), A("a b.Jpeg"));
        var img = src.Load(at);
        Assert.Equal((3, 2, 3, 4), (img.Width, img.Height, img.Channels, img.Label));
        Assert.Empty(img.Labels);
        Assert.Equal(DataFiles.Pattern(3, 2, 22), img.Pixels);
        Assert.Equal(DataFiles.Pattern(2, 2, 4), src.Load(0).Pixels);   // class "10" was written with seed 4
    }

    [Fact]
    public void OneClassIsAllowed()
    {
        using var dir = new TempDir();
        DataFiles.Png(dir, "only/x.png", 2, 2, DataFiles.Pattern(2, 2, 1));
        var src = new ImageFolderSource(dir.Path);
        Assert.Equal(["only"], src.ClassNames);
        Assert.Equal(1, src.Count);
        Assert.Equal(0, src.Load(0).Label);
    }

    [Fact]
    public void Errors()
    {
        using var dir = new TempDir();
        var missing = dir["nope"];
        Assert.Equal($"image folder '{missing}' not found", Assert.Throws<DataException>(() => new ImageFolderSource(missing)).Message);

        var file = dir.Write("file.png", [1, 2, 3]);
        Assert.Equal($"image folder '{file}' is a file; expected a folder with one subfolder per class",
            Assert.Throws<DataException>(() => new ImageFolderSource(file)).Message);

        var flat = dir["flat"];
        DataFiles.Png(dir, "flat/x.png", 2, 2, DataFiles.Pattern(2, 2, 1));
        Assert.Equal($"image folder '{flat}' has no class subfolders; expected one subfolder of images per class",
            Assert.Throws<DataException>(() => new ImageFolderSource(flat)).Message);

        DataFiles.Png(dir, "two/cat/x.png", 2, 2, DataFiles.Pattern(2, 2, 1));
        Directory.CreateDirectory(dir["two/dog"]);
        File.WriteAllText(dir["two/dog/readme.txt"], "");
        var e = Assert.Throws<DataException>(() => new ImageFolderSource(dir["two"]));
        Assert.Equal($"class folder '{Path.Combine(dir["two"], "dog")}' holds no images; expected files ending .bmp, .gif, .jpeg, .jpg, .png", e.Message);
        Assert.Equal(Path.Combine(dir["two"], "dog"), e.Path);
    }
}
