namespace Xception.Gpu.Training;

/// <summary>
/// One batch, preprocessed: X is NHWC float32 [Count, S, S, C]; Labels for single-label classification,
/// Targets [Count, classes] of 0/1 for multi-label.
/// </summary>
public sealed record TrainBatch(float[] X, int Count, int[]? Labels, float[]? Targets);

/// <summary>
/// What the trainer needs from a dataset: the batches of an epoch in a fixed order (a pure function of the
/// epoch, so a resumed run sees the same batches), starting at any batch, and the validation batches.
/// </summary>
public sealed class TrainingData
{
    public required int TrainCount { get; init; }
    public required int Classes { get; init; }
    public bool MultiLabel { get; init; }
    public required int StepsPerEpoch { get; init; }
    /// <summary>(epoch, first batch) to the epoch's batches from that one on.</summary>
    public required Func<int, int, IEnumerable<TrainBatch>> TrainBatches { get; init; }
    public int ValidationCount { get; init; }
    public Func<IEnumerable<TrainBatch>>? ValidationBatches { get; init; }
    /// <summary>Images skipped so far because they could not be read, with a few of their names.</summary>
    public Func<(long Count, IReadOnlyList<string> Examples)>? Skipped { get; init; }
    public string Description { get; init; } = "";
}
