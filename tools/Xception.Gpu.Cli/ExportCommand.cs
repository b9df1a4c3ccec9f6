using Xception.Gpu.Graph.Layers;
using Xception.Gpu.IO;
using Xception.Gpu.IO.Onnx;
using Xception.Gpu.Architecture;

namespace Xception.Gpu.Cli;

static class ExportCommand
{
    public static CliCommand Definition => new("export", "write weights as an ONNX model, Keras .h5 or safetensors for other tools", Run, """
        xception export --weights W [--model M] [--pooling P] --onnx F [--image-size S | --dynamic-size]
                        [--batch N | --dynamic-batch] [--logits] [--opset 17]
        xception export --weights W [--model M] --h5 F.h5 | --safetensors F.safetensors

        Writes the weights W (a Keras .h5 or an Xception.Gpu checkpoint, trained here or not) for other tools;
        give one or more outputs. The ONNX model's input is 'input_1' (Keras' input layer), NHWC float32
        (batch, height, width, channels) preprocessed as Keras' 'tf' mode (x / 127.5 - 1); its output is
        'predictions' (softmax probabilities, or logits), or the pooling layer ('avg_pool', 'max_pool') without
        the classifier. Nodes carry Keras' layer names; each batch norm is folded into the convolution before it.
        Every file is written to a temporary name and renamed, so it is whole or absent.
        """)
    {
        Value("weights", "W", "a Keras .h5 or an Xception.Gpu checkpoint (required)"),
        Value("onnx", "F", "write the model as a standard ONNX graph for inference"),
        Value("h5", "F", "write Keras' HDF5 weight layout (save_weights), as Keras' load_weights reads it"),
        Value("safetensors", "F", "write the weights only (no training state), named as Keras names them ('block1_conv1/kernel'), in Keras' shapes, the configuration in the metadata"),
        Choice("model", ["xception", "xception-mini"], "for Keras files, which do not store the model (default xception); checkpoints and the .h5 files this tool writes say which model they hold"),
        Choice("pooling", ["avg", "max", "none"], "leave the classifier out and end in avg or max pooling (Keras' include_top=False, pooling=P), or none (the block14 feature maps)"),
        Value("image-size", "S", "ONNX: the input size (default: the checkpoint's, 299 for Keras files)"),
        Flag("dynamic-size", "ONNX: height and width symbolic ('height', 'width'); any size from 71 then runs"),
        Value("batch", "N", "ONNX: a fixed batch size (default: symbolic 'batch', as Keras' (None, ...) input)"),
        Flag("dynamic-batch", "ONNX: the default, said explicitly"),
        Flag("logits", "ONNX: output the classifier's logits instead of its softmax probabilities"),
        Value("opset", "V", "ONNX opset, 13 to 21 (default 17)"),
    };

    /// <summary>What the command line asked for; parsing is kept to <see cref="Parse"/>.</summary>
    internal sealed record ExportArgs(
        string Weights, string Model, GlobalPooling? Pooling, string? Onnx, string? H5, string? SafeTensors,
        int? ImageSize, bool DynamicSize, int? Batch, bool Logits, int Opset);

    static int Run(Args a)
    {
        var e = Parse(a);
        foreach (var (option, path) in new[] { ("--onnx", e.Onnx), ("--h5", e.H5), ("--safetensors", e.SafeTensors) })
            if (path is not null) OutputPaths.WritableFile(option, path);

        var fallback = ModelPresets.Config(e.Model);
        var config = ModelWeights.ConfigOf(e.Weights, fallback);
        if (e.Pooling is { } p) config = config with { IncludeTop = false, Pooling = p };
        if (e.ImageSize is { } s) config = config with { ImageSize = s };
        config = config.Validate();
        // No device: the weights stay on the host, where every writer reads them.
        using var model = XceptionBuilder.Build(config);
        ModelWeights.Load(model, e.Weights);

        if (e.Onnx is { } onnx)
        {
            var options = new OnnxExportOptions
            {
                Opset = e.Opset, Batch = e.Batch, DynamicSize = e.DynamicSize, Logits = e.Logits, Config = config,
            };
            OnnxExport.Write(model, onnx, options);
            string size = e.DynamicSize ? "height, width" : $"{config.ImageSize}, {config.ImageSize}";
            string batch = e.Batch is { } b ? $"{b}" : "batch";
            string what = model.Output is DenseLayer ? (e.Logits ? "logits" : "probabilities") : "features";
            int folded = model.Layers.Count(l => l is BatchNormLayer);
            Console.WriteLine($"wrote {onnx}: ONNX opset {e.Opset}, input {model.Input.Name} ({batch}, {size}, {config.InputChannels}) NHWC float32, " +
                              $"output {model.Output.Name} ({what}), {folded} batch norms folded");
        }
        if (e.H5 is { } h5)
        {
            KerasH5.Save(model, h5, config);
            Console.WriteLine($"wrote {h5}: Keras HDF5 weights ({Count(model)} tensors)");
        }
        if (e.SafeTensors is { } st)
        {
            ModelWeights.SaveSafeTensors(model, config, st);
            Console.WriteLine($"wrote {st}: safetensors weights ({Count(model)} tensors, Keras names and shapes)");
        }
        return 0;
    }

    static int Count(Graph.Model model) => model.Parameters.Count();

    /// <summary>The options, checked against each other.</summary>
    internal static ExportArgs Parse(Args a)
    {
        var weights = a.String("weights") ?? throw new UsageException("export needs --weights W (a Keras .h5 file or a checkpoint)");
        var model = ModelOption.Read(a, ModelPresets.Xception);
        GlobalPooling? pooling = a.String("pooling")?.ToLowerInvariant() switch
        {
            null => null,
            "avg" => GlobalPooling.Avg,
            "max" => GlobalPooling.Max,
            "none" => GlobalPooling.None,
            var p => throw new UsageException($"--pooling must be avg, max or none, got '{p}'"),
        };
        var (onnx, h5, st) = (a.String("onnx"), a.String("h5"), a.String("safetensors"));
        if (onnx is null && h5 is null && st is null)
            throw new UsageException("export needs an output: --onnx F, --h5 F or --safetensors F (or several)");
        if (a.String("image-size") is not null && a.Flag("dynamic-size"))
            throw new UsageException("give --image-size or --dynamic-size, not both");
        if (a.String("batch") is not null && a.Flag("dynamic-batch"))
            throw new UsageException("give --batch or --dynamic-batch, not both");
        if (onnx is null)
            foreach (var only in new[] { "dynamic-size", "dynamic-batch", "logits", "batch", "opset" })
                if (a.Flag(only) || a.String(only) is not null)
                    throw new UsageException($"--{only} applies to the ONNX model: add --onnx F");
        var paths = new[] { onnx, h5, st }.Where(p => p is not null).Select(p => Path.GetFullPath(p!)).ToList();
        if (paths.Distinct().Count() < paths.Count) throw new UsageException("each output needs its own file");
        return new ExportArgs(weights, model, pooling, onnx, h5, st,
            a.String("image-size") is null ? null : a.Int("image-size", 299, 5, 8192), a.Flag("dynamic-size"),
            a.String("batch") is null ? null : a.Int("batch", 1, 1, 1 << 20), a.Flag("logits"),
            a.Int("opset", OnnxExportOptions.DefaultOpset, OnnxExportOptions.MinOpset, OnnxExportOptions.MaxOpset));
    }
}
