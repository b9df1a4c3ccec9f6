using Xception.Gpu.Imaging;

namespace Xception.Gpu.Data;

/// <summary>
/// A folder with one subfolder per class, the layout of Keras' <c>image_dataset_from_directory</c>, indexed the
/// way Keras indexes it so that class indices (and so trained output units) agree with a Keras model trained on
/// the same folder: class names are the subfolder names in ordinal (code-point) order, as Python's sorted()
/// gives; within a class, files are searched recursively, folders in ordinal order of their paths and files in
/// ordinal order of their names, keeping .jpg, .jpeg, .png, .bmp and .gif in any letter case. Folders that are
/// symbolic links are not followed (Keras' follow_links=False). Like Keras, every subfolder is a class, hidden
/// ones included.
/// Images are decoded with <see cref="ImageLoader"/> into RGB (3 channels) when loaded, not up front.
/// </summary>
public sealed class ImageFolderSource : IDataSource
{
    /// <summary>The extensions Keras' image_dataset_from_directory accepts.</summary>
    public static readonly IReadOnlyList<string> Extensions = [".bmp", ".gif", ".jpeg", ".jpg", ".png"];

    readonly string[] files;
    readonly int[] labels;
    readonly string[] classNames;

    /// <summary>The folder as given.</summary>
    public string Root { get; }

    /// <summary>Every image file, in index order.</summary>
    public IReadOnlyList<string> Files => files;

    /// <inheritdoc/>
    public int Count => files.Length;
    /// <inheritdoc/>
    public int Classes => classNames.Length;
    /// <inheritdoc/>
    public IReadOnlyList<string> ClassNames => classNames;
    /// <inheritdoc/>
    public bool MultiLabel => false;
    /// <inheritdoc/>
    public string Description => $"image folder '{Root}': {Count} images in {Classes} classes";

    /// <summary>Indexes <paramref name="root"/>; throws a <see cref="DataException"/> when it is missing, has no
    /// class subfolders, or a class holds no image.</summary>
    public ImageFolderSource(string root)
    {
        ArgumentNullException.ThrowIfNull(root);
        Root = root;
        if (!Directory.Exists(root))
            throw new DataException(root, File.Exists(root) ? $"image folder '{root}' is a file; expected a folder with one subfolder per class" : $"image folder '{root}' not found");
        var classes = Directory.GetDirectories(root).Select(Path.GetFileName).Select(n => n!).ToArray();
        Array.Sort(classes, StringComparer.Ordinal);
        if (classes.Length == 0)
            throw new DataException(root, $"image folder '{root}' has no class subfolders; expected one subfolder of images per class");

        var fileList = new List<string>();
        var labelList = new List<int>();
        for (int k = 0; k < classes.Length; k++)
        {
            var dir = Path.Combine(root, classes[k]);
            int before = fileList.Count;
            foreach (var f in ImagesUnder(dir)) { fileList.Add(f); labelList.Add(k); }
            if (fileList.Count == before)
                throw new DataException(dir, $"class folder '{dir}' holds no images; expected files ending {string.Join(", ", Extensions)}");
        }
        classNames = classes;
        files = fileList.ToArray();
        labels = labelList.ToArray();
    }

    /// <summary>The image files under <paramref name="dir"/>, in Keras' order (see the class remarks).</summary>
    static IEnumerable<string> ImagesUnder(string dir)
    {
        var folders = new List<string>();
        void Walk(string d)
        {
            folders.Add(d);
            foreach (var sub in Directory.GetDirectories(d))
                if (new DirectoryInfo(sub).LinkTarget is null) Walk(sub);
        }
        Walk(dir);
        folders.Sort(StringComparer.Ordinal);
        foreach (var folder in folders)
        {
            var names = Directory.GetFiles(folder).Select(Path.GetFileName).Select(n => n!)
                .Where(n => Extensions.Any(e => n.EndsWith(e, StringComparison.OrdinalIgnoreCase))).ToArray();
            Array.Sort(names, StringComparer.Ordinal);
            foreach (var n in names) yield return Path.Combine(folder, n);
        }
    }

    /// <summary>The class index of sample <paramref name="index"/>, without decoding it.</summary>
    public int LabelOf(int index) => labels[index];

    /// <inheritdoc/>
    public RawImage Load(int index)
    {
        var img = ImageLoader.Load(files[index]);
        return new RawImage(img.Width, img.Height, 3, img.Pixels, labels[index]);
    }
}
