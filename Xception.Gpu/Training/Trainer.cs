using System.Diagnostics;
using Xception.Gpu.Graph;
using Xception.Gpu.Models;
using Xception.Gpu.Ops;
using Xception.Gpu.Parallel;

namespace Xception.Gpu.Training;

/// <summary>What the trainer reports while it runs (the CLI draws progress from it).</summary>
public interface ITrainingObserver
{
    void OnStart(TrainPosition from, int epochs, int stepsPerEpoch, long? maxSteps) { }
    void OnStep(TrainPosition at, double loss, double lr, EvalResult running, double imagesPerSecond) { }
    void OnEpoch(EpochReport report) { }
    void OnCheckpoint(string path) { }
    void OnWarning(string message) { }
}

/// <summary>One finished epoch (or the partial epoch a step limit ended).</summary>
public sealed record EpochReport(int Epoch, long Step, double LearningRate, EvalResult Train, EvalResult? Validation, double Seconds, double ImagesPerSecond);

/// <summary>
/// The batch did not fit in device memory. The message names the batch size that would: training memory is
/// about (weights x 4: values, gradients, two optimizer slots) + batch x (activations per image).
/// </summary>
public sealed class OutOfMemoryAdvice
{
    public static string Message(string device, int batch, long deviceBytes, long fixedBytes, long perImageBytes)
    {
        long usable = (long)(deviceBytes * 0.9) - fixedBytes;
        int fits = perImageBytes <= 0 ? 0 : (int)Math.Max(0, usable / perImageBytes);
        return $"out of memory on {device} at batch {batch}: training needs about {perImageBytes >> 20} MiB per image " +
               $"plus {fixedBytes >> 20} MiB for weights, gradients and optimizer state; " +
               (fits >= 1 ? $"--batch {fits} would fit in its {deviceBytes / (double)(1L << 30):F1} GiB" : "not even one image fits: use a smaller --image-size");
    }
}

/// <summary>Training stopped because the loss stopped being a number.</summary>
public sealed class NonFiniteLossException(string message) : XceptionException(message);

/// <summary>
/// Synchronous SGD / RMSprop training: forward and backward per batch, one optimizer step, metrics,
/// validation after each epoch, checkpoints. On one bound model, or on the replicas of a
/// <see cref="DataParallel"/> run (in one process or, with MPI, several: every process runs this loop on its
/// shard of each batch; the first process writes checkpoints). Everything random is a function of (seed,
/// epoch, batch, step), so a run resumed from a checkpoint continues exactly like one that never stopped.
/// </summary>
public sealed class Trainer
{
    readonly DataParallel? parallel;
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

    /// <summary>Data-parallel training of the replicas of <paramref name="parallel"/> (built with the settings' optimizer).</summary>
    public Trainer(DataParallel parallel, XceptionConfig config, TrainSettings settings, ITrainingObserver? observer = null)
        : this(parallel.Model, config, settings, observer)
    {
        if (parallel.Optimizer.Settings != settings.Optimizer)
            throw new XceptionException("the replicas were made with other optimizer settings than the trainer's");
        this.parallel = parallel;
    }

    public string? LastCheckpoint { get; private set; }

    /// <summary>True when the last <see cref="Run"/> ended early because <c>stop</c> was signalled.</summary>
    public bool Stopped { get; private set; }

    /// <summary>
    /// Runs until the epochs or the step limit are done, or <paramref name="stop"/> is signalled: then the step
    /// in progress finishes, a checkpoint is written (when there is a checkpoint folder) and
    /// <see cref="Stopped"/> is set. Returns the per-epoch reports.
    /// </summary>
    public List<EpochReport> Run(TrainingData data, string? resumeFrom = null, CancellationToken stop = default)
    {
        Stopped = false;
        var d = model.Device ?? throw new XceptionException("bind the model to a device before training");
        if (data.Classes != config.Classes && config.IncludeTop)
            throw new XceptionException($"the data has {data.Classes} classes, the model {config.Classes}");
        using var single = parallel is null ? DataParallel.Single(model, settings.Optimizer) : null;
        var dp = parallel ?? single!;
        int replicas = dp.Count * (dp.Processes?.Size ?? 1);
        model.EnsureFits((settings.Batch + replicas - 1) / replicas, training: true); // before any data is read
        var optimizer = dp.Optimizer;
        var pos = TrainPosition.Start;
        var running = new Evaluation.Accumulator(data.MultiLabel);
        string optimizerText = System.Text.Json.JsonSerializer.Serialize(settings.Optimizer);
        if (resumeFrom is not null)
        {
            var state = Checkpoints.Load(resumeFrom, model, optimizer);
            if (state.Batch != settings.Batch || state.Seed != settings.Seed || state.Optimizer != optimizerText || state.Data != data.Description)
                throw new XceptionException($"--resume: '{resumeFrom}' was trained with batch {state.Batch}, seed {state.Seed}, optimizer {state.Optimizer}, data '{state.Data}'; " +
                                            $"this run has batch {settings.Batch}, seed {settings.Seed}, optimizer {optimizerText}, data '{data.Description}'");
            pos = state.Position;
            running.Load(state.Running);
            LastCheckpoint = resumeFrom;
            dp.CopyFirstToOthers();
            dp.VerifyIdentical(); // every process read the same file
        }

        var reports = new List<EpochReport>();
        obs.OnStart(pos, settings.Epochs, data.StepsPerEpoch, settings.MaxSteps);
        while (pos.Epoch < settings.Epochs && !(settings.MaxSteps is { } max && pos.Step >= max))
        {
            var clock = Stopwatch.StartNew();
            long imagesThisRun = 0;
            double lr = 0;
            using var batches = data.TrainBatches(pos.Epoch, pos.Batch).GetEnumerator();
            while (true)
            {
                if (settings.MaxSteps is { } m && pos.Step >= m) break;
                TrainBatch b;
                try
                {
                    if (!batches.MoveNext()) break;
                    b = batches.Current;
                }
                catch (Exception e) when (dp.Processes is { Size: > 1 })
                {
                    // The other processes are about to start this step: tell them, so that all stop here
                    // together (and the checkpoint the first process may be writing is finished).
                    dp.StopAll(e);
                    throw;
                }
                lr = settings.Schedule.At(pos.Step, pos.Samples, pos.Epoch + pos.Batch / (double)data.StepsPerEpoch);
                StepResult r;
                try
                {
                    r = dp.Step(b, (float)lr, pos.Step, settings.LabelSmoothing);
                }
                catch (Exception e) when (OutOfMemory(e) is { } oom)
                {
                    // The run stops here, before any optimizer step or checkpoint of this batch.
                    throw new DeviceException(Advice(oom.Device, b.Count), e);
                }
                if (r.Applied)
                {
                    running.Add(r.Sums);
                    imagesThisRun += r.GlobalCount;
                    obs.OnStep(pos with { Batch = pos.Batch + 1, Step = pos.Step + 1 }, r.Loss, lr, running.Result(), imagesThisRun / clock.Elapsed.TotalSeconds);
                }
                else if (r.Skipped is null)
                    throw new NonFiniteLossException($"the loss became {r.Loss} at step {pos.Step + 1} (epoch {pos.Epoch + 1}, batch {pos.Batch + 1}); stopped without saving. " +
                        (LastCheckpoint is null ? "No checkpoint was written yet." : $"The last good checkpoint is '{LastCheckpoint}'.") +
                        $" A lower learning rate (now {lr:G4}) usually helps.");
                else if (r.GlobalCount > 0)
                    obs.OnWarning($"step {pos.Step + 1} skipped: {r.Skipped}");
                pos = pos with { Batch = pos.Batch + 1, Step = pos.Step + 1, Samples = pos.Samples + r.GlobalCount };
                if (settings.VerifyEvery > 0 && pos.Step % settings.VerifyEvery == 0) dp.VerifyIdentical();
                if (settings.CheckpointEvery > 0 && pos.Step % settings.CheckpointEvery == 0 && pos.Batch < data.StepsPerEpoch)
                    Save(dp, pos, running, data);
                if (StopRequested(dp, stop)) { Stopped = true; break; }
            }
            d.Synchronize();
            double seconds = clock.Elapsed.TotalSeconds;
            bool finished = pos.Batch >= data.StepsPerEpoch;
            if (Stopped && !finished)
            {
                // Mid-epoch: the checkpoint holds the position and the epoch's running metrics, so a resumed
                // run continues with the next batch as if it had never stopped.
                Save(dp, pos, running, data);
                break;
            }
            if (finished && running.Count == 0)
                throw new XceptionException($"no training image could be read in epoch {pos.Epoch + 1}: {Unreadable(data)}; nothing was trained" +
                    (LastCheckpoint is null ? "" : $" (the last checkpoint, '{LastCheckpoint}', is unchanged)"));
            EvalResult? val = finished && data.ValidationBatches is not null && data.ValidationCount > 0
                ? dp.Evaluate(data.ValidationBatches(), data.Classes, data.MultiLabel, settings.LabelSmoothing)
                : null;
            if (val is { Count: 0 })
            {
                obs.OnWarning($"no validation image could be read ({Unreadable(data)}): this epoch has no validation metrics");
                val = null;
            }
            var report = new EpochReport(pos.Epoch + 1, pos.Step, lr, running.Result(), val, seconds, imagesThisRun / Math.Max(seconds, 1e-9));
            if (data.Skipped?.Invoke() is { } skipped)
            {
                // Under MPI each process reads its own shard: the count is the sum over the processes (every
                // process takes part in this all-reduce), the examples are this process's.
                long count = skipped.Count;
                if (dp.Processes is { Size: > 1 } processes)
                {
                    var all = new double[] { count };
                    processes.AllReduceSum(all);
                    count = (long)all[0];
                }
                if (count > 0)
                    obs.OnWarning($"{count} unreadable images skipped so far" +
                                  (skipped.Examples.Count > 0 ? $" (e.g. {string.Join(", ", skipped.Examples.Take(3))})" : ""));
            }
            if (finished)
            {
                pos = new TrainPosition(pos.Epoch + 1, 0, pos.Step, pos.Samples);
                running = new Evaluation.Accumulator(data.MultiLabel);
            }
            reports.Add(report);
            // The checkpoint first: a report that fails to be written (a full disk for the log) never costs it.
            Save(dp, pos, running, data);
            obs.OnEpoch(report);
            if (Stopped) break;
        }
        model.SyncToHost();
        return reports;
    }

    /// <summary>
    /// Whether to stop after this step. Under MPI every process must stop at the same step (the others would
    /// wait in the next all-reduce forever), so the processes agree: stop when any of them was signalled.
    /// </summary>
    static bool StopRequested(DataParallel dp, CancellationToken stop)
    {
        if (!stop.CanBeCanceled) return false;
        if (dp.Processes is not { Size: > 1 } processes) return stop.IsCancellationRequested;
        var flag = new double[] { stop.IsCancellationRequested ? 1 : 0 };
        processes.AllReduceSum(flag);
        return flag[0] > 0;
    }

    /// <summary>What the loader skipped, for the error or warning that says no image was read.</summary>
    static string Unreadable(TrainingData data) =>
        data.Skipped?.Invoke() is { Count: > 0 } s
            ? $"{s.Count} images were unreadable and skipped (e.g. {string.Join(", ", s.Examples.Take(3))})"
            : "every batch was empty";

    /// <summary>The out-of-memory error behind a failed step (directly, or inside a replica's failure), with its device.</summary>
    (DeviceException Error, Device Device)? OutOfMemory(Exception e)
    {
        if (e is DeviceException de && de.Message.StartsWith("out of memory")) return (de, model.Device!);
        if (e is ReplicaFailedException { InnerException: DeviceException inner } rf && inner.Message.StartsWith("out of memory"))
            return (inner, parallel!.ReplicaDevice(rf.Rank % parallel.Count));
        return null;
    }

    /// <summary>Measures one image's training memory (a batch of 1) to say which batch would fit.</summary>
    string Advice(Device d, int batch)
    {
        long fixedBytes = model.Parameters.Sum(p => (long)p.Length) * 4 * 4;
        long perImage = 0;
        try
        {
            using var probe = Tensor.Zeros(d, [1, .. model.Input.OutputShape]);
            var ex = model.Executor(1, training: true);
            ex.Forward(probe);
            perImage = ex.Bytes * 2; // activations and their gradients
        }
        catch (DeviceException) { }
        return OutOfMemoryAdvice.Message(d.ToString(), batch, d.MemoryBytes, fixedBytes, perImage);
    }

    void Save(DataParallel dp, TrainPosition pos, Evaluation.Accumulator running, TrainingData data)
    {
        if (settings.CheckpointDir is null) return;
        dp.VerifyIdentical(); // never save replicas that drifted apart
        if (!dp.IsRoot) return;
        var state = new Checkpoints.State(pos, running.Save(), settings.Batch, settings.Seed,
            System.Text.Json.JsonSerializer.Serialize(settings.Optimizer), data.Description);
        LastCheckpoint = Checkpoints.Save(settings.CheckpointDir, model, config, dp.Optimizer, state, settings.KeepCheckpoints);
        obs.OnCheckpoint(LastCheckpoint);
    }
}
