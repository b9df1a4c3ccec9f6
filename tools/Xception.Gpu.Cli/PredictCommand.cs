using System.Diagnostics;
using Xception.Gpu.Imaging;
using Xception.Gpu.Inference;
using Xception.Gpu.IO;
using Xception.Gpu.Architecture;

namespace Xception.Gpu.Cli;

static class PredictCommand
{
    public static CliCommand Definition => new("predict", "classify images, or run a preprocessed .npy array, with Keras weights", Run, """
        xception predict --weights W [--device D] [--top 5] [--image-size S] [--resize bilinear|nearest] [--batch N] IMAGE...
        xception predict --weights W --input X.npy --output Y.npy [--logits] [--classes C] [--image-size S] [--device D] [--batch N]

        W is a Keras weight file (.h5, e.g. xception_weights_tf_dim_ordering_tf_kernels.h5) or an
        Xception.Gpu checkpoint. With images (JPEG, PNG, ...): prints the top classes of each, decoded to RGB,
        resized to S x S (default 299; bilinear, or nearest as Keras' load_img), preprocessed as Keras' 'tf'
        mode (x / 127.5 - 1). With --input: reads an already preprocessed NHWC float32 array (N, S, S, 3)
        and writes the (N, C) probabilities, or the logits with --logits, as a NumPy .npy file.
        """)
    {
        Files("IMAGE", "image files (JPEG, PNG, ...)"),
        Value("weights", "W", "a Keras .h5 or an Xception.Gpu checkpoint (required)"),
        DeviceOption(),
        PrecisionOption.Declare(),
        Value("top", "K", "classes printed per image (default 5)"),
        Value("image-size", "S", "input size S x S (default 299, or the checkpoint's)"),
        Choice("resize", ["bilinear", "nearest"], "how images are resized (default bilinear; nearest as Keras' load_img)"),
        Value("batch", "N", "images per forward pass (default 16)"),
        Value("input", "X.npy", "a preprocessed NHWC float32 array (N, S, S, 3) instead of images"),
        Value("output", "Y.npy", "with --input: where the (N, C) probabilities (or logits) go"),
        Flag("logits", "with --input: write logits, not probabilities"),
        Value("classes", "C", "with --input: the classes the weights must have (a check)"),
        Value("max-image-pixels", "N", "refuse images that declare more pixels (default 89,478,485, PIL's limit): the guard against decompression bombs"),
    };

    static int Run(Args a)
    {
        a.ApplyImageLimit();
        PrecisionOption.Read(a); // a wrong word is refused before any file is read
        var weights = a.String("weights") ?? throw new UsageException("predict needs --weights (a Keras .h5 file or a checkpoint)");
        int batch = a.Int("batch", 16, 1, 4096);
        if (a.String("input") is { } input) return Arrays(a, weights, input, batch);
        if (a.Positional.Count == 0) throw new UsageException("predict needs image files, or --input X.npy --output Y.npy");
        foreach (var opt in new[] { "output", "classes" })
            if (a.String(opt) is not null) throw new UsageException($"--{opt} goes with --input; with images, give --weights, --top, --image-size");
        if (a.Flag("logits")) throw new UsageException("--logits goes with --input");
        var resize = a.String("resize", "bilinear").ToLowerInvariant() switch
        {
            "bilinear" => ResizeMode.Bilinear,
            "nearest" => ResizeMode.Nearest,
            var r => throw new UsageException($"--resize must be bilinear or nearest, got '{r}'"),
        };
        int top = a.Int("top", 5, 1, 100000);
        Inputs.RequireImageFiles(a.Positional);

        var precision = PrecisionOption.Read(a);
        using var model = XceptionModel.Load(weights, a.String("device", "auto"), a.String("image-size") is null ? null : a.Int("image-size", 299, 71, 8192));
        model.Precision = precision;
        if (!model.Config.IncludeTop) throw new XceptionException($"'{weights}' has no classifier (a _notop file): predict needs one; use --input/--output for features");
        Console.Error.WriteLine($"{model.Config.Classes} classes, {model.ImageSize}x{model.ImageSize}, on {model.Device}");
        var sw = Stopwatch.StartNew();
        int failed = 0;
        // One image at a time through the batches: a broken file costs only its own line.
        for (int start = 0; start < a.Positional.Count; start += batch)
        {
            var chunk = a.Positional.Skip(start).Take(batch).ToList();
            IReadOnlyList<IReadOnlyList<Prediction>> results;
            try
            {
                results = model.Classify(chunk, top, resize, batch);
            }
            catch (ImageException)
            {
                results = chunk.Select(f =>
                {
                    try { return model.Classify(f, top, resize); }
                    catch (ImageException e) { Console.Error.WriteLine($"xception: {e.Message}"); failed++; return null!; }
                }).ToList();
            }
            for (int i = 0; i < chunk.Count; i++)
            {
                if (results[i] is null) continue;
                Console.WriteLine(chunk[i]);
                foreach (var p in results[i]) Console.WriteLine($"  {p.Probability,8:P2}  {p.Index,5}  {p.Label}");
            }
        }
        Console.Error.WriteLine($"{a.Positional.Count - failed} images in {sw.Elapsed.TotalSeconds:F2} s" + (failed > 0 ? $", {failed} failed" : ""));
        return failed > 0 ? 1 : 0;
    }

    static int Arrays(Args a, string weights, string input, int batch)
    {
        var output = a.String("output") ?? throw new UsageException("--input needs --output Y.npy");
        if (a.Positional.Count > 0) throw new UsageException($"give either image files or --input, not both ('{a.Positional[0]}')");
        OutputPaths.WritableFile("--output", output);
        var x = Inputs.ReadArray(input, a.String("image-size") is null ? null : a.Int("image-size", 0, 71, 8192));
        int size = x.Shape[1];
        var precision = PrecisionOption.Read(a);
        using var model = XceptionModel.Load(weights, a.String("device", "auto"), size);
        model.Precision = precision;
        if (a.String("classes") is not null)
        {
            int classes = a.Int("classes", 0, 1, 1_000_000);
            if (model.Config.IncludeTop && classes != model.Config.Classes)
                throw new XceptionException($"--classes {classes} but '{weights}' has {model.Config.Classes} classes");
        }
        if (x.Shape[3] != model.Config.InputChannels)
            throw new XceptionException($"'{input}' has {x.Shape[3]} channels; the model takes {model.Config.InputChannels}");
        int n = x.Shape[0];
        bool logits = a.Flag("logits") || !model.Config.IncludeTop;
        var y = logits ? model.Logits(x.Data, n, batch) : model.Probabilities(x.Data, n, batch);
        Npy.Write(output, y, [n, y.Length / n]);
        Console.Error.WriteLine($"wrote {(logits ? "logits" : "probabilities")} ({n}, {y.Length / n}) to {output} ({model.Device})");
        return 0;
    }
}
