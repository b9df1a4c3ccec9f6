using Xception.Gpu.Data;
using System.Diagnostics;

namespace Xception.Gpu.Training;

/// <summary>The steps of an epoch and what follows its last step.</summary>
public sealed partial class Trainer
{
    /// <summary>What an epoch's steps did in this run: wall time, images trained and the last learning rate.</summary>
    readonly record struct EpochProgress(Stopwatch Clock, long Images, double LearningRate);

    /// <summary>
    /// The steps of the epoch in progress, from the run's position to the epoch's end, the step limit or a stop
    /// signal (which sets <see cref="Stopped"/>).
    /// </summary>
    EpochProgress TrainEpoch(RunState run, CancellationToken stop)
    {
        var clock = Stopwatch.StartNew();
        long images = 0;
        double lr = 0;
        using var batches = run.Data.TrainBatches(run.Position.Epoch, run.Position.Batch).GetEnumerator();
        while (!StepLimitReached(run) && NextBatch(run, batches) is { } b)
        {
            var pos = run.Position;
            lr = settings.Schedule.At(pos.Step, pos.Samples, pos.Epoch + pos.Batch / (double)run.Data.StepsPerEpoch);
            var r = Step(run, b, lr);
            if (r.Applied)
            {
                run.Running.Add(r.Sums);
                images += r.GlobalCount;
                obs.OnStep(pos with { Batch = pos.Batch + 1, Step = pos.Step + 1 }, r.Loss, lr, run.Running.Result(), images / clock.Elapsed.TotalSeconds);
            }
            else if (r.Skipped is null)
                throw new NonFiniteLossException($"the loss became {r.Loss} at step {pos.Step + 1} (epoch {pos.Epoch + 1}, batch {pos.Batch + 1}); stopped without saving. " +
                    (LastCheckpoint is null ? "No checkpoint was written yet." : $"The last good checkpoint is '{LastCheckpoint}'.") +
                    $" A lower learning rate (now {lr:G4}) usually helps.");
            else if (r.GlobalCount > 0)
                obs.OnWarning($"step {pos.Step + 1} skipped: {r.Skipped}");
            run.Position = pos = pos with { Batch = pos.Batch + 1, Step = pos.Step + 1, Samples = pos.Samples + r.GlobalCount };
            if (settings.VerifyEvery > 0 && pos.Step % settings.VerifyEvery == 0) run.Replicas.VerifyIdentical();
            if (settings.CheckpointEvery > 0 && pos.Step % settings.CheckpointEvery == 0 && pos.Batch < run.Data.StepsPerEpoch)
                Save(run);
            if (StopRequested(run.Replicas, stop)) { Stopped = true; break; }
        }
        return new EpochProgress(clock, images, lr);
    }

    /// <summary>The next batch of the epoch, or null at its end.</summary>
    static TrainBatch? NextBatch(RunState run, IEnumerator<TrainBatch> batches)
    {
        try
        {
            return batches.MoveNext() ? batches.Current : null;
        }
        catch (Exception e) when (run.Replicas.Processes is { Size: > 1 })
        {
            // The other processes are about to start this step: tell them, so that all stop here together
            // (and the checkpoint the first process may be writing is finished).
            run.Replicas.StopAll(e);
            throw;
        }
    }

    /// <summary>One step; a batch that does not fit in a device's memory stops the run with the batch that would.</summary>
    StepResult Step(RunState run, TrainBatch b, double lr)
    {
        try
        {
            return run.Replicas.Step(b, (float)lr, run.Position.Step, settings.LabelSmoothing);
        }
        catch (Exception e) when ((e as DeviceOutOfMemoryException ?? e.InnerException as DeviceOutOfMemoryException) is { } oom)
        {
            // Directly, or as the cause of a replica's failure. The run stops here, before any optimizer step
            // or checkpoint of this batch.
            throw OutOfMemory(oom.Device, b.Count, e);
        }
    }

    /// <summary>
    /// After an epoch's steps: a mid-epoch stop writes its checkpoint; a finished epoch is validated, reported
    /// and checkpointed, and the position moves to the next epoch. Returns false when the run stops here.
    /// </summary>
    bool EndEpoch(RunState run, EpochProgress epoch, List<EpochReport> reports)
    {
        double seconds = epoch.Clock.Elapsed.TotalSeconds;
        var (data, pos) = (run.Data, run.Position);
        bool finished = pos.Batch >= data.StepsPerEpoch;
        if (Stopped && !finished)
        {
            // Mid-epoch: the checkpoint holds the position and the epoch's running metrics, so a resumed run
            // continues with the next batch as if it had never stopped.
            Save(run);
            return false;
        }
        if (finished && run.Running.Count == 0)
            throw new DataException(data.Description, $"no training image could be read in epoch {pos.Epoch + 1}: {Unreadable(data)}; nothing was trained" +
                (LastCheckpoint is null ? "" : $" (the last checkpoint, '{LastCheckpoint}', is unchanged)"));
        var report = new EpochReport(pos.Epoch + 1, pos.Step, epoch.LearningRate, run.Running.Result(), finished ? Validate(run) : null,
            seconds, epoch.Images / Math.Max(seconds, 1e-9));
        WarnOfSkippedImages(run);
        if (finished)
        {
            run.Position = new TrainPosition(pos.Epoch + 1, 0, pos.Step, pos.Samples);
            run.Running = new Evaluation.Accumulator(data.MultiLabel);
        }
        reports.Add(report);
        // The checkpoint first: a report that fails to be written (a full disk for the log) never costs it.
        Save(run);
        obs.OnEpoch(report);
        return !Stopped;
    }

    /// <summary>The validation metrics of a finished epoch, or null when there is no validation image.</summary>
    EvalResult? Validate(RunState run)
    {
        var data = run.Data;
        if (data.ValidationBatches is null || data.ValidationCount <= 0) return null;
        var val = run.Replicas.Evaluate(data.ValidationBatches(), data.Classes, data.MultiLabel, settings.LabelSmoothing);
        if (val.Count > 0) return val;
        obs.OnWarning($"no validation image could be read ({Unreadable(data)}): this epoch has no validation metrics");
        return null;
    }

    /// <summary>
    /// Warns of the images the loader skipped so far. Under MPI each process reads its own shard: the count is
    /// the sum over the processes (every process takes part in this all-reduce), the examples are this process's.
    /// </summary>
    void WarnOfSkippedImages(RunState run)
    {
        if (run.Data.Skipped?.Invoke() is not { } skipped) return;
        long count = skipped.Count;
        if (run.Replicas.Processes is { Size: > 1 } processes)
        {
            var all = new double[] { count };
            processes.AllReduceSum(all);
            count = (long)all[0];
        }
        if (count > 0)
            obs.OnWarning($"{count} unreadable images skipped so far" +
                          (skipped.Examples.Count > 0 ? $" (e.g. {string.Join(", ", skipped.Examples.Take(3))})" : ""));
    }

    /// <summary>
    /// Whether to stop after this step. Under MPI every process must stop at the same step (the others would
    /// wait in the next all-reduce forever), so the processes agree: stop when any of them was signalled.
    /// </summary>
    static bool StopRequested(ITrainingReplicas replicas, CancellationToken stop)
    {
        if (!stop.CanBeCanceled) return false;
        if (replicas.Processes is not { Size: > 1 } processes) return stop.IsCancellationRequested;
        var flag = new double[] { stop.IsCancellationRequested ? 1 : 0 };
        processes.AllReduceSum(flag);
        return flag[0] > 0;
    }

    /// <summary>What the loader skipped, for the error or warning that says no image was read.</summary>
    static string Unreadable(TrainingData data) =>
        data.Skipped?.Invoke() is { Count: > 0 } s
            ? $"{s.Count} images were unreadable and skipped (e.g. {string.Join(", ", s.Examples.Take(3))})"
            : "every batch was empty";

    /// <summary>Measures one image's training memory (a batch of 1) on <paramref name="d"/> to say which batch would fit.</summary>
    TrainingOutOfMemoryException OutOfMemory(Device d, int batch, Exception cause)
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
        return new TrainingOutOfMemoryException(d.ToString(), batch, d.MemoryBytes, fixedBytes, perImage, cause);
    }
}
