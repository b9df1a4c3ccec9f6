using System.Reflection;

namespace Xception.Gpu.Inference;

/// <summary>
/// The 1000 ImageNet (ILSVRC-2012) class names in class-index order, the order of the outputs of Keras'
/// ImageNet-trained Xception, so a prediction's argmax can be shown as a name. Each line holds the class's
/// synonyms, comma-separated, most common first ("tabby, tabby cat").
///
/// Source: the IMAGENET_CLASSES table of the npm package @tensorflow-models/mobilenet 2.1.1
/// (dist/imagenet_classes.js, Apache-2.0), indices 0 to 999 written one per line. The names are the
/// ImageNet synset words; two classes share a name ("crane" the bird, 134, and the machine, 517) and two
/// differ only by a synonym ("maillot", 638, and "maillot, tank suit", 639), as in ImageNet itself.
/// </summary>
public static class ImageNetLabels
{
    /// <summary>Number of classes of an ImageNet-1k classifier.</summary>
    public const int Count = 1000;

    const string Resource = "Xception.Gpu.Inference.imagenet_labels.txt";

    static readonly Lazy<IReadOnlyList<string>> all = new(Load);

    /// <summary>All 1000 names; read from the embedded resource on first use.</summary>
    public static IReadOnlyList<string> All => all.Value;

    static IReadOnlyList<string> Load()
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(Resource)
            ?? throw new InvalidOperationException($"embedded resource '{Resource}' is missing from {typeof(ImageNetLabels).Assembly.GetName().Name}");
        using var reader = new StreamReader(stream);
        var lines = reader.ReadToEnd().Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        if (lines.Count > 0 && lines[^1].Length == 0) lines.RemoveAt(lines.Count - 1);
        if (lines.Count != Count || lines.Any(string.IsNullOrWhiteSpace))
            throw new InvalidOperationException($"embedded resource '{Resource}' has {lines.Count} lines, expected {Count} non-empty class names");
        return lines.AsReadOnly();
    }
}
