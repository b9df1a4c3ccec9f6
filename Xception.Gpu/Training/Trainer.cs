using System.Diagnostics;
using Xception.Gpu.Graph;
using Xception.Gpu.Models;
using Xception.Gpu.Ops;

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
/// Synchronous SGD / RMSprop training of a bound model: forward and backward per batch, one optimizer step,
/// metrics, validation after each epoch, checkpoints. Everything random is a function of (seed, epoch,
/// batch, step), so a run resumed from a checkpoint continues exactly like one that never stopped.
/// </summary>
public sealed class Trainer(Model model, XceptionConfig config, TrainSettings settings, ITrainingObserver? observer = null)
{
    readonly ITrainingObserver obs = observer ?? new NullObserver();

    sealed class NullObserver : ITrainingObserver;

    public string? LastCheckpoint { get; private set; }

    /// <summary>Runs until the epochs or the step limit are done; returns the per-epoch reports.</summary>
    public List<EpochReport> Run(TrainingData data, string? resumeFrom = null)
    {
        var d = model.Device ?? throw new XceptionException("bind the model to a device before training");
        if (data.Classes != config.Classes && config.IncludeTop)
            throw new XceptionException($"the data has {data.Classes} classes, the model {config.Classes}");
        using var optimizer = new OptimizerState(model, settings.Optimizer);
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
        }

        var reports = new List<EpochReport>();
        obs.OnStart(pos, settings.Epochs, data.StepsPerEpoch, settings.MaxSteps);
        int perImage = model.Input.OutputShape.Aggregate(1, (a, b) => a * b);
        var inputs = new Dictionary<int, Tensor<float>>();
        var grads = new Dictionary<int, Tensor<float>>();
        var labelBuffers = new Dictionary<int, Tensor<int>>();
        var targetBuffers = new Dictionary<int, Tensor<float>>();
        try
        {
            while (pos.Epoch < settings.Epochs && !(settings.MaxSteps is { } max && pos.Step >= max))
            {
                var clock = Stopwatch.StartNew();
                long imagesThisRun = 0;
                double lr = 0;
                foreach (var b in data.TrainBatches(pos.Epoch, pos.Batch))
                {
                    if (settings.MaxSteps is { } m && pos.Step >= m) break;
                    lr = settings.Schedule.At(pos.Step, pos.Samples, pos.Epoch + pos.Batch / (double)data.StepsPerEpoch);
                    if (b.Count > 0)
                    {
                        var x = Get(inputs, b.Count, () => Tensor.Zeros(d, [b.Count, .. model.Input.OutputShape]));
                        x.CopyFrom(b.X.AsSpan(0, b.Count * perImage));
                        var ex = model.Executor(b.Count, training: true);
                        ex.Step = pos.Step;
                        Tensor<float> logits;
                        try
                        {
                            logits = ex.Forward(x);
                        }
                        catch (DeviceException e) when (e.Message.StartsWith("out of memory"))
                        {
                            // The run stops here, before any optimizer step or checkpoint of this batch.
                            throw new DeviceException(Advice(d, b.Count), e);
                        }
                        var dl = Get(grads, b.Count, () => Tensor.Zeros(d, b.Count, data.Classes));
                        double loss;
                        if (data.MultiLabel)
                        {
                            var t = Get(targetBuffers, b.Count, () => Tensor.Zeros(d, b.Count, data.Classes));
                            t.CopyFrom(b.Targets!);
                            loss = Loss.On(d).SigmoidCrossEntropy(logits, t, dl);
                        }
                        else
                        {
                            var lb = Get(labelBuffers, b.Count, () => Tensor.Zeros<int>(d, b.Count));
                            loss = Loss.On(d).SoftmaxCrossEntropy(logits, b.Labels!, lb, dl, settings.LabelSmoothing);
                        }
                        if (!double.IsFinite(loss))
                            throw new NonFiniteLossException($"the loss became {loss} at step {pos.Step + 1} (epoch {pos.Epoch + 1}, batch {pos.Batch + 1}); stopped without saving. " +
                                (LastCheckpoint is null ? "No checkpoint was written yet." : $"The last good checkpoint is '{LastCheckpoint}'.") +
                                $" A lower learning rate (now {lr:G4}) usually helps.");
                        running.Add(b, logits.ToArray(), loss, data.Classes);
                        ex.Backward(dl);
                        optimizer.Step((float)lr);
                        imagesThisRun += b.Count;
                        obs.OnStep(pos with { Batch = pos.Batch + 1, Step = pos.Step + 1 }, loss, lr, running.Result(), imagesThisRun / clock.Elapsed.TotalSeconds);
                    }
                    pos = pos with { Batch = pos.Batch + 1, Step = pos.Step + 1, Samples = pos.Samples + b.Count };
                    if (settings.CheckpointEvery > 0 && pos.Step % settings.CheckpointEvery == 0 && pos.Batch < data.StepsPerEpoch)
                        Save(optimizer, pos, running, data);
                }
                d.Synchronize();
                double seconds = clock.Elapsed.TotalSeconds;
                bool finished = pos.Batch >= data.StepsPerEpoch;
                EvalResult? val = finished && data.ValidationBatches is not null && data.ValidationCount > 0
                    ? Evaluation.Run(model, data.ValidationBatches(), data.Classes, data.MultiLabel, settings.LabelSmoothing)
                    : null;
                var report = new EpochReport(pos.Epoch + 1, pos.Step, lr, running.Result(), val, seconds, imagesThisRun / Math.Max(seconds, 1e-9));
                if (data.Skipped?.Invoke() is { Count: > 0 } skipped)
                    obs.OnWarning($"{skipped.Count} unreadable images skipped so far (e.g. {string.Join(", ", skipped.Examples.Take(3))})");
                if (finished)
                {
                    pos = new TrainPosition(pos.Epoch + 1, 0, pos.Step, pos.Samples);
                    running = new Evaluation.Accumulator(data.MultiLabel);
                }
                reports.Add(report);
                obs.OnEpoch(report);
                Save(optimizer, pos, running, data);
            }
        }
        finally
        {
            foreach (var t in inputs.Values) t.Dispose();
            foreach (var t in grads.Values) t.Dispose();
            foreach (var t in labelBuffers.Values) t.Dispose();
            foreach (var t in targetBuffers.Values) t.Dispose();
        }
        model.SyncToHost();
        return reports;
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

    void Save(OptimizerState optimizer, TrainPosition pos, Evaluation.Accumulator running, TrainingData data)
    {
        if (settings.CheckpointDir is null) return;
        var state = new Checkpoints.State(pos, running.Save(), settings.Batch, settings.Seed,
            System.Text.Json.JsonSerializer.Serialize(settings.Optimizer), data.Description);
        LastCheckpoint = Checkpoints.Save(settings.CheckpointDir, model, config, optimizer, state, settings.KeepCheckpoints);
        obs.OnCheckpoint(LastCheckpoint);
    }

    static T Get<T>(Dictionary<int, T> cache, int key, Func<T> make) where T : class =>
        cache.TryGetValue(key, out var v) ? v : cache[key] = make();
}
