namespace Xception.Gpu.Training;

/// <summary>Everything that shapes a training run besides the model and the data.</summary>
public sealed record TrainSettings
{
    public int Epochs { get; init; } = 10;
    /// <summary>Stop after this many optimizer steps in all (null: run every epoch).</summary>
    public long? MaxSteps { get; init; }
    public int Batch { get; init; } = 32;
    public int Seed { get; init; }
    public float LabelSmoothing { get; init; }
    public OptimizerSettings Optimizer { get; init; } = new();
    public LearningRateSchedule Schedule { get; init; } = new();
    /// <summary>Folder for checkpoints; null writes none.</summary>
    public string? CheckpointDir { get; init; }
    /// <summary>Also write a checkpoint every N steps (0: only at the end of each epoch).</summary>
    public int CheckpointEvery { get; init; }
    /// <summary>
    /// With several replicas, check every N steps (and before every checkpoint) that they still hold identical
    /// weights; 0 checks only before checkpoints.
    /// </summary>
    public int VerifyEvery { get; init; } = 100;
    /// <summary>Checkpoints kept; older ones are deleted.</summary>
    public int KeepCheckpoints { get; init; } = 3;
}

/// <summary>Where a run stands: the position a checkpoint records and a resumed run starts from.</summary>
public sealed record TrainPosition(int Epoch, int Batch, long Step, long Samples)
{
    public static readonly TrainPosition Start = new(0, 0, 0, 0);
}
