using Xception.Gpu.IO;

namespace Xception.Gpu.Cli;

/// <summary>The inputs that predict, features and explain share: image files, or a preprocessed .npy batch.</summary>
static class Inputs
{
    /// <summary>
    /// Every image named on the command line must be a file, checked before the model loads: a run over
    /// thousands of images should not find a typo at the end, and a folder is not "missing".
    /// </summary>
    public static void RequireImageFiles(IEnumerable<string> paths)
    {
        foreach (var f in paths)
        {
            if (Directory.Exists(f)) throw new XceptionException($"image '{f}' is a folder, expected an image file");
            if (!File.Exists(f)) throw new XceptionException($"image '{f}' does not exist");
        }
    }

    /// <summary>
    /// A preprocessed NHWC float batch (--input): shape (N, S, S, channels) with N >= 1, and S equal to
    /// <paramref name="imageSize"/> when one was asked for.
    /// </summary>
    public static NpyArray ReadArray(string input, int? imageSize)
    {
        var x = Npy.Read(input);
        if (x.Shape.Length != 4 || x.Shape[1] != x.Shape[2])
            throw new XceptionException($"'{input}' has shape ({string.Join(", ", x.Shape)}); expected (N, S, S, channels) NHWC");
        if (x.Shape[0] == 0)
            throw new XceptionException($"'{input}' holds no images (shape ({string.Join(", ", x.Shape)})); expected (N, S, S, channels) with N >= 1");
        if (imageSize is { } s && s != x.Shape[1])
            throw new XceptionException($"--image-size {s} but '{input}' holds {x.Shape[1]}x{x.Shape[2]} images");
        return x;
    }
}
