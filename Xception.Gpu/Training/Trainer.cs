using Xception.Gpu.Graph;
using Xception.Gpu.Architecture;

namespace Xception.Gpu.Training;

/// <summary>
/// Synchronous SGD / RMSprop training: forward and backward per batch, one optimizer step, metrics,
/// validation after each epoch, checkpoints. On one bound model, or on replicas that take each step together
/// (<see cref="ITrainingReplicas"/>: data parallelism in one process or, with MPI, several; every process runs
/// this loop on its shard of each batch, and the first process writes checkpoints). Everything random is a
/// function of (seed, epoch, batch, step), so a run resumed from a checkpoint continues exactly like one that
/// never stopped.
/// </summary>
public sealed partial class Trainer
{
    readonly ITrainingReplicas? replicas;
    readonly Model model;
    readonly XceptionConfig config;
    readonly TrainSettings settings;
    readonly ITrainingObserver obs;

    sealed class NullObserver : ITrainingObserver;

    /// <summary>Training of one model on the device it is bound to.</summary>
    public Trainer(Model model, XceptionConfig config, TrainSettings settings, ITrainingObserver? observer = null)
    {
        this.model = model;
        this.config = config;
        this.settings = settings;
        obs = observer ?? new NullObserver();
    }

    /// <summary>Training of <paramref name="replicas"/> (made with the settings' optimizer); the caller keeps and disposes them.</summary>
    public Trainer(ITrainingReplicas replicas, XceptionConfig config, TrainSettings settings, ITrainingObserver? observer = null)
        : this(replicas.Model, config, settings, observer)
    {
        if (replicas.Optimizer.Settings != settings.Optimizer)
            throw new ArgumentException("the replicas were made with other optimizer settings than the trainer's");
        this.replicas = replicas;
    }

    public string? LastCheckpoint { get; private set; }

    /// <summary>True when the last <see cref="Run"/> ended early because <c>stop</c> was signalled.</summary>
    public bool Stopped { get; private set; }

    /// <summary>Where a run is: its replicas and data, the position, and the running metrics of the epoch in progress.</summary>
    sealed class RunState(ITrainingReplicas replicas, TrainingData data)
    {
        public ITrainingReplicas Replicas { get; } = replicas;
        public TrainingData Data { get; } = data;
        public TrainPosition Position { get; set; } = TrainPosition.Start;
        public Evaluation.Accumulator Running { get; set; } = new(data.MultiLabel);
    }

    /// <summary>
    /// Runs until the epochs or the step limit are done, or <paramref name="stop"/> is signalled: then the step
    /// in progress finishes, a checkpoint is written (when there is a checkpoint folder) and
    /// <see cref="Stopped"/> is set. Returns the per-epoch reports.
    /// </summary>
    /// <exception cref="ResumeMismatchException">the checkpoint was written by a run with other settings</exception>
    /// <exception cref="TrainingOutOfMemoryException">a batch did not fit on a device</exception>
    /// <exception cref="NonFiniteLossException">the loss stopped being a number</exception>
    public List<EpochReport> Run(TrainingData data, string? resumeFrom = null, CancellationToken stop = default)
    {
        Stopped = false;
        var d = model.Device ?? throw new InvalidOperationException("bind the model to a device before training");
        if (data.Classes != config.Classes && config.IncludeTop)
            throw new ClassCountException($"the data has {data.Classes} classes, the model {config.Classes}", config.Classes, data.Classes);
        using var single = replicas is null ? new SingleReplica(model, settings.Optimizer) : null;
        var run = new RunState(replicas ?? single!, data);
        int n = run.Replicas.GlobalCount;
        model.EnsureFits((settings.Batch + n - 1) / n, training: true); // before any data is read
        if (resumeFrom is not null) Resume(run, resumeFrom);

        var reports = new List<EpochReport>();
        obs.OnStart(run.Position, settings.Epochs, data.StepsPerEpoch, settings.MaxSteps);
        while (run.Position.Epoch < settings.Epochs && !StepLimitReached(run))
        {
            var epoch = TrainEpoch(run, stop);
            d.Synchronize();
            if (!EndEpoch(run, epoch, reports)) break;
        }
        model.SyncToHost();
        return reports;
    }

    bool StepLimitReached(RunState run) => settings.MaxSteps is { } max && run.Position.Step >= max;

    /// <summary>Restores the checkpoint into the replicas, after checking that it was written by this run's settings.</summary>
    void Resume(RunState run, string path)
    {
        string optimizerText = OptimizerText;
        var state = Checkpoints.Load(path, model, run.Replicas.Optimizer);
        if (state.Batch != settings.Batch || state.Seed != settings.Seed || state.Optimizer != optimizerText || state.Data != run.Data.Description)
            throw new ResumeMismatchException($"checkpoint '{path}' was trained with batch {state.Batch}, seed {state.Seed}, optimizer {state.Optimizer}, data '{state.Data}'; " +
                                              $"this run has batch {settings.Batch}, seed {settings.Seed}, optimizer {optimizerText}, data '{run.Data.Description}'");
        // The run goes on freezing what it froze, with the same batch norm mode.
        Checkpoints.ApplyTrainingMode(state, model);
        run.Position = state.Position;
        run.Running.Load(state.Running);
        LastCheckpoint = path;
        run.Replicas.CopyFirstToOthers();
        run.Replicas.VerifyIdentical(); // every process read the same file
    }

    string OptimizerText => System.Text.Json.JsonSerializer.Serialize(settings.Optimizer);

    /// <summary>
    /// Writes a checkpoint of the position and running metrics, when the run has a checkpoint folder. Every
    /// process checks that the replicas agree first; only the first process writes.
    /// </summary>
    void Save(RunState run)
    {
        if (settings.CheckpointDir is null) return;
        run.Replicas.VerifyIdentical(); // never save replicas that drifted apart
        if (!run.Replicas.IsRoot) return;
        var state = new Checkpoints.State(run.Position, run.Running.Save(), settings.Batch, settings.Seed, OptimizerText, run.Data.Description,
            [.. model.FrozenLayers], model.BatchNormMode.ToString());
        LastCheckpoint = Checkpoints.Save(settings.CheckpointDir, model, config, run.Replicas.Optimizer, state, settings.KeepCheckpoints);
        obs.OnCheckpoint(LastCheckpoint);
    }
}
