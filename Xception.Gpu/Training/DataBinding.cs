using Xception.Gpu.Data;

namespace Xception.Gpu.Training;

/// <summary>Turns a data source and its split into what the trainer consumes (<see cref="TrainingData"/>).</summary>
public static class DataBinding
{
    /// <summary>
    /// Training batches from <paramref name="split"/>'s training indices in the epoch's seeded order (with
    /// augmentation when given), validation batches from its validation indices (plain resize).
    /// With a <paramref name="shard"/> (one process of a data-parallel run), only that part of every training
    /// and validation batch is loaded.
    /// </summary>
    public static TrainingData Bind(IDataSource source, Split split, int batch, int imageSize, int channels,
        Augment? augment, int seed, bool strict, BatchShard? shard = null)
    {
        long skipped = 0;
        var names = new List<string>();
        var options = new BatchLoaderOptions { BatchSize = batch, ImageSize = imageSize, Channels = channels, Seed = seed, Strict = strict, Shard = shard };

        IEnumerable<TrainBatch> Read(IReadOnlyList<int> order, BatchLoaderOptions o)
        {
            using var loader = new BatchLoader(source, order, o);
            foreach (var b in loader.ReadAll())
                yield return new TrainBatch(b.X, b.Count, source.MultiLabel ? null : b.Labels, b.Targets);
            skipped += loader.Skipped;
            foreach (var f in loader.SkippedFiles) if (names.Count < 10 && !names.Contains(f)) names.Add(f);
        }

        return new TrainingData
        {
            TrainCount = split.Train.Length,
            Classes = source.Classes,
            MultiLabel = source.MultiLabel,
            StepsPerEpoch = (split.Train.Length + batch - 1) / batch,
            TrainBatches = (epoch, start) => Read(split.EpochOrder(epoch), options with { Augment = augment, Epoch = epoch, StartBatch = start }),
            ValidationCount = split.Validation.Length,
            ValidationBatches = split.Validation.Length == 0 ? null : () => Read(split.Validation, options with { Augment = null, Epoch = 0, StartBatch = 0 }),
            Skipped = () => (skipped, names),
            Description = $"{source.Description}; validation {split.Validation.Length}, seed {seed}, augment {(augment is null ? "off" : "on")}",
        };
    }

    /// <summary>
    /// Every sample of a source, in order, plainly resized (evaluation). When the pass ends,
    /// <paramref name="skipped"/> hears how many unreadable samples were skipped and the first files' names.
    /// </summary>
    public static IEnumerable<TrainBatch> All(IDataSource source, int batch, int imageSize, int channels, bool strict,
        Action<long, IReadOnlyList<string>>? skipped = null)
    {
        var order = Enumerable.Range(0, source.Count).ToArray();
        using var loader = new BatchLoader(source, order, new BatchLoaderOptions { BatchSize = batch, ImageSize = imageSize, Channels = channels, Strict = strict });
        foreach (var b in loader.ReadAll())
            yield return new TrainBatch(b.X, b.Count, source.MultiLabel ? null : b.Labels, b.Targets);
        skipped?.Invoke(loader.Skipped, loader.SkippedFiles);
    }
}
