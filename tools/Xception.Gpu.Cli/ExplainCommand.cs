using StbImageWriteSharp;
using Xception.Gpu.Imaging;
using Xception.Gpu.Inference;
using Xception.Gpu.IO;

namespace Xception.Gpu.Cli;

static class ExplainCommand
{
    public static CliCommand Definition => new("explain", "Grad-CAM heatmaps: where in each image the evidence for a class lies", Run, """
        xception explain --weights W [--class K] [--layer L] [--output DIR] [--heatmap H.npy]
                         [--device D] [--image-size S] [--resize bilinear|nearest] [--batch N] IMAGE...
        xception explain --weights W --input X.npy [--class K] [--layer L] [--output DIR] [--heatmap H.npy]
                         [--device D] [--image-size S] [--batch N]

        Grad-CAM, as Keras' "Grad-CAM class activation visualization" example: where in each image the
        evidence for a class lies. The gradient of the class's logit with respect to layer L's output
        (default: the last ReLU, block14_sepconv2_act in Xception), averaged over height and width, weights L's channels;
        the heatmap is the ReLU of their weighted sum over its maximum. Batch norm runs in inference mode.
        Prints each image's class (default: its top class; --class K explains class K for every image).
        Images are resized to S x S (default 299) and preprocessed as for 'xception predict'.
        """)
    {
        Files("IMAGE", "image files (JPEG, PNG, ...)"),
        Value("weights", "W", "a Keras .h5 or an Xception.Gpu checkpoint, with the classifier (required)"),
        Value("class", "K", "the class to explain for every image (default: each image's top class)"),
        Value("layer", "L", "the layer whose output the heatmap is of (default: the last ReLU; 'xception summary' lists the layers)"),
        Value("output", "DIR", "writes DIR/<image name>.gradcam.png per image: the heatmap in the jet colormap over the image " +
                               "(at the image's own size), alpha 0.4; for --input, over the input turned back into pixels " +
                               "((x + 1) * 127.5), as image_<i>.gradcam.png"),
        Value("heatmap", "H.npy", "writes the heatmaps, float32 (N, h, w) in [0, 1], h x w being L's spatial size"),
        DeviceOption(),
        PrecisionOption.Declare(),
        Value("image-size", "S", "input size S x S (default 299, or the checkpoint's)"),
        Choice("resize", ["bilinear", "nearest"], "how images are resized (default bilinear; nearest as Keras' load_img)"),
        Value("batch", "N", "images per pass (default 8)"),
        Value("input", "X.npy", "a preprocessed NHWC float32 array (N, S, S, channels) instead of images"),
        Value("max-image-pixels", "N", "refuse images that declare more pixels (default 89,478,485, PIL's limit): the guard against decompression bombs"),
    };

    static int Run(Args a)
    {
        a.ApplyImageLimit();
        PrecisionOption.Read(a); // a wrong word is refused before any file is read
        var weights = a.String("weights") ?? throw new UsageException("explain needs --weights (a Keras .h5 file or a checkpoint)");
        int batch = a.Int("batch", 8, 1, 4096);
        int? classIndex = a.String("class") is null ? null : a.Int("class", 0, 0, int.MaxValue);
        string? layer = a.String("layer");
        var input = a.String("input");
        if (input is null && a.Positional.Count == 0) throw new UsageException("explain needs image files, or --input X.npy");
        if (input is not null && a.Positional.Count > 0) throw new UsageException($"give either image files or --input, not both ('{a.Positional[0]}')");
        if (input is not null && a.String("resize") is not null) throw new UsageException("--resize goes with image files; --input is already preprocessed");
        var resize = a.String("resize", "bilinear").ToLowerInvariant() switch
        {
            "bilinear" => ResizeMode.Bilinear,
            "nearest" => ResizeMode.Nearest,
            var r => throw new UsageException($"--resize must be bilinear or nearest, got '{r}'"),
        };
        var outDir = a.String("output");
        var heatmapFile = a.String("heatmap");
        if (outDir is not null) OutputPaths.Folder("--output", outDir);
        if (heatmapFile is not null) OutputPaths.WritableFile("--heatmap", heatmapFile);
        Inputs.RequireImageFiles(a.Positional);

        NpyArray? x = null;
        int? size = a.String("image-size") is null ? null : a.Int("image-size", 299, 71, 8192);
        if (input is not null)
        {
            x = Inputs.ReadArray(input, size);
            size = x.Shape[1];
        }

        var precision = PrecisionOption.Read(a);
        using var model = XceptionModel.Load(weights, a.String("device", "auto"), size);
        model.Precision = precision;
        if (!model.Config.IncludeTop) throw new XceptionException($"'{weights}' has no classifier (a _notop file): Grad-CAM explains a class's logit");
        if (classIndex is { } k && k >= model.Config.Classes)
            throw new XceptionException($"--class {k} is out of range: '{weights}' has {model.Config.Classes} classes (0..{model.Config.Classes - 1})");
        var layers = model.ExplainableLayers;
        layer ??= model.DefaultExplainLayer;
        if (!layers.Contains(layer))
            throw new XceptionException($"--layer '{layer}' is not a layer with a spatial output; those are the {layers.Count} from {layers[0]} " +
                $"to {layers[^1]}, e.g. {string.Join(", ", layers.TakeLast(3))} ('xception summary' lists the layers)");
        if (x is not null && x.Shape[3] != model.Config.InputChannels)
            throw new XceptionException($"'{input}' has {x.Shape[3]} channels; the model takes {model.Config.InputChannels}");

        var names = x is null ? a.Positional : Enumerable.Range(0, x.Shape[0]).Select(i => $"image {i}").ToList();
        var results = x is null
            ? model.Explain(a.Positional, classIndex, layer, resize, batch)
            : model.Explain(x.Data, x.Shape[0], classIndex, layer, batch);
        for (int i = 0; i < results.Count; i++)
            Console.WriteLine($"{names[i]}: class {results[i].Class} ({results[i].Label}), logit {results[i].Logit:G5}");

        if (heatmapFile is not null)
        {
            var e0 = results[0];
            Npy.Write(heatmapFile, results.SelectMany(e => e.Heatmap).ToArray(), [results.Count, e0.Height, e0.Width]);
            Console.Error.WriteLine($"wrote heatmaps ({results.Count}, {e0.Height}, {e0.Width}) of {layer} to {heatmapFile}");
        }
        if (outDir is not null)
        {
            var used = new HashSet<string>(StringComparer.Ordinal);
            for (int i = 0; i < results.Count; i++)
            {
                var image = x is null ? ImageLoader.Load(a.Positional[i]) : Deprocess(x.Data, i, x.Shape[1]);
                var stem = x is null ? Path.GetFileNameWithoutExtension(a.Positional[i]) : $"image_{i}";
                // Two images of the same name from different folders must not overwrite each other.
                var name = stem;
                for (int n = 2; !used.Add(name); n++) name = $"{stem}-{n}";
                WritePng(Path.Combine(outDir, $"{name}.gradcam.png"), results[i].Overlay(image));
            }
            Console.Error.WriteLine($"wrote {results.Count} overlay{(results.Count == 1 ? "" : "s")} to {outDir}");
        }
        return 0;
    }

    /// <summary>Input image <paramref name="index"/> back to pixels: Keras' 'tf' preprocessing undone, (x + 1) * 127.5.</summary>
    static RgbImage Deprocess(float[] data, int index, int size)
    {
        int per = size * size * 3;
        var px = new byte[per];
        for (int k = 0; k < per; k++) px[k] = (byte)Math.Clamp(MathF.Round((data[index * per + k] + 1) * 127.5f), 0, 255);
        return new RgbImage(size, size, px);
    }

    static void WritePng(string path, RgbImage image) =>
        AtomicFile.Write(path, s => new ImageWriter().WritePng(image.Pixels, image.Width, image.Height, ColorComponents.RedGreenBlue, s));
}
