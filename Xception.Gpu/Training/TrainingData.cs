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

/// <summary>Reshapes <see cref="TrainingData"/> for runs that evaluate every few steps rather than every epoch.</summary>
public static class EvaluationIntervals
{
    /// <summary>
    /// The same batches in the same order as <paramref name="data"/>'s epochs one after another, cut into
    /// "epochs" of <paramref name="steps"/> steps: the trainer then validates, reports and checkpoints after every
    /// <paramref name="steps"/> steps, and a resumed run continues in the stream exactly where it stopped. The
    /// data's real epoch boundaries fall anywhere inside an interval. Only schedules that follow steps or samples
    /// (constant, cosine, exponential in samples) keep their meaning: what the trainer calls an epoch is an interval.
    /// </summary>
    public static TrainingData Of(TrainingData data, int steps)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (steps < 1) throw new OpArgumentException("intervals", $"an evaluation interval needs at least 1 step, got {steps}");
        if (data.StepsPerEpoch < 1) throw new OpArgumentException("intervals", $"the data has {data.StepsPerEpoch} steps per epoch; expected at least 1");

        IEnumerable<TrainBatch> Interval(int interval, int start)
        {
            long at = (long)interval * steps + start, end = (long)(interval + 1) * steps;
            while (at < end)
            {
                int epoch = checked((int)(at / data.StepsPerEpoch));
                foreach (var b in data.TrainBatches(epoch, (int)(at % data.StepsPerEpoch)))
                {
                    yield return b;
                    if (++at == end) yield break;
                }
                at = (long)(epoch + 1) * data.StepsPerEpoch; // the data's next epoch, even if this one gave fewer batches
            }
        }

        return new TrainingData
        {
            TrainCount = data.TrainCount,
            Classes = data.Classes,
            MultiLabel = data.MultiLabel,
            StepsPerEpoch = steps,
            TrainBatches = Interval,
            ValidationCount = data.ValidationCount,
            ValidationBatches = data.ValidationBatches,
            Skipped = data.Skipped,
            Description = $"{data.Description}; intervals of {steps} steps",
        };
    }
}
