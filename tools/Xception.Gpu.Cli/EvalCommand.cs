using Xception.Gpu.Data;
using Xception.Gpu.IO;
using Xception.Gpu.Architecture;
using Xception.Gpu.Training;

namespace Xception.Gpu.Cli;

static class EvalCommand
{
    public static CliCommand Definition => new("eval", "evaluate weights on a data set (loss, top-1, top-5 or MAP@100)", Run, """
        Evaluates weights (a checkpoint, or a Keras .h5) on a data set and prints the loss and top-1 /
        top-5 accuracy (MAP@100 for multi-label data).
        """)
    {
        Value("weights", "W", "a checkpoint or a Keras .h5 (required)"),
        Value("data", "D", "the data set, as for 'xception train --data' (required)"),
        Choice("split", ["test", "val", "all"], "test (the default when the data set has a test set, e.g. Fashion-MNIST's t10k files), " +
                                                "val (the validation part that 'train' held out with the same --val-split and --seed), or all"),
        Value("val-split", "F", "with --split val: the fraction 'train' held out (default 0.1)"),
        Value("seed", "S", "with --split val: the seed 'train' split with (default 0)"),
        Value("batch", "B", "images per forward pass (default 64)"),
        DeviceOption(),
        PrecisionOption.Declare(),
        Value("image-size", "S", "input size S x S (default: the weights')"),
        Flag("strict", "stop at an unreadable image instead of skipping it (skips are counted)"),
        Value("max-image-pixels", "N", "refuse images that declare more pixels (default 89,478,485, PIL's limit): the guard against decompression bombs"),
    };

    static int Run(Args a)
    {
        a.ApplyImageLimit();
        var precision = PrecisionOption.Read(a);
        var weights = a.String("weights") ?? throw new UsageException("eval needs --weights (a checkpoint or a Keras .h5)");
        var data = DataSources.Open(a.String("data") ?? throw new UsageException("eval needs --data"), a.Int("seed", 0, 0));
        var config = ModelWeights.ConfigOf(weights, new XceptionConfig { Classes = data.Train.Classes });
        if (a.String("image-size") is not null) config = (config with { ImageSize = a.Int("image-size", 0, 5) }).Validate();
        if (config.Classes != data.Train.Classes)
            throw new XceptionException($"'{weights}' has {config.Classes} classes, the data {data.Train.Classes}");
        string split = a.String("split", data.Test is null ? "val" : "test").ToLowerInvariant();
        int batch = a.Int("batch", 64, 1, 65536);
        IDataSource source;
        IEnumerable<TrainBatch> batches;
        (long Count, IReadOnlyList<string> Files) skipped = (0, []);
        switch (split)
        {
            case "test":
                source = data.Test ?? throw new XceptionException("this data set has no test set: use --split val or all");
                batches = DataBinding.All(source, batch, config.ImageSize, config.InputChannels, a.Flag("strict"), (n, names) => skipped = (n, names));
                break;
            case "val":
            case "all":
                source = data.Train;
                var s = Split.Make(source.Count, split == "all" ? 0 : a.Double("val-split", 0.1, 0.0001, 0.9), a.Int("seed", 0, 0));
                var bound = DataBinding.Bind(source, s, batch, config.ImageSize, config.InputChannels, null, a.Int("seed", 0, 0), a.Flag("strict"));
                batches = split == "all" ? bound.TrainBatches(0, 0) : bound.ValidationBatches!();
                batches = Then(batches, () => skipped = bound.Skipped!());
                break;
            default:
                throw new UsageException($"--split must be test, val or all, got '{split}'");
        }
        using var device = Device.Open(a.String("device", "auto"));
        device.Precision = precision;
        using var model = XceptionBuilder.Build(config);
        ModelWeights.Load(model, weights);
        model.Bind(device);
        model.EnsureFits(batch, training: false); // before any image is read
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var result = Evaluation.Run(model, batches, config.Classes, source.MultiLabel);
        string unreadable = skipped.Count == 0 ? "" : $"{skipped.Count} unreadable images skipped (e.g. {string.Join(", ", skipped.Files.Take(3))})";
        if (result.Count == 0)
            throw new XceptionException($"no image of the {split} set could be read: " + (skipped.Count > 0 ? unreadable : "it is empty") + "; nothing to evaluate");
        Console.WriteLine($"{split}: {result} ({sw.Elapsed.TotalSeconds:F1} s on {device})");
        if (skipped.Count > 0) Console.Error.WriteLine($"xception: warning: {unreadable}");
        return 0;
    }

    /// <summary>The batches, then <paramref name="after"/> once they are all read.</summary>
    static IEnumerable<TrainBatch> Then(IEnumerable<TrainBatch> batches, Action after)
    {
        foreach (var b in batches) yield return b;
        after();
    }
}
