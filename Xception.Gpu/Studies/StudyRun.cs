using Xception.Gpu.Data;
using Xception.Gpu.IO;
using Xception.Gpu.Architecture;
using Xception.Gpu.Training;

namespace Xception.Gpu.Studies;

/// <summary>One variant with one seed: trains or resumes it in its folder, keeps its log, and says a line per evaluation.</summary>
sealed class StudyRun(StudySettings o, StudyVariant variant, int seed, string dir, long total, (long Params, long Macs) cost, Action<string> say) : ITrainingObserver
{
    readonly TrainingLog log = new(Path.Combine(dir, StudyRunner.LogFile));
    EpochReport? last;

    public bool Stopped { get; private set; }
    /// <summary>Why the run could not finish (its loss stopped being a number), or null.</summary>
    public string? Failure { get; private set; }
    public string? LastCheckpoint { get; private set; }
    string Label => $"{variant.Name} seed {seed}";

    public IReadOnlyList<LogRow> Train(Device device, IDataSource train, IDataSource test, CancellationToken stop)
    {
        var rows = log.Rows;
        if (rows.Count > 0 && rows[^1].Step >= total)
        {
            say($"{Label}: finished earlier (top-1 {rows[^1].ValAcc * 100:F2}% at step {rows[^1].Step})");
            return rows.ToList();
        }
        Directory.CreateDirectory(dir);
        foreach (var left in AtomicFile.RemoveLeftovers(dir)) say($"removed {left} in {dir}, left by a write that was interrupted");
        string? resume = Checkpoints.List(dir).LastOrDefault();
        long from = resume is null ? 0 : Checkpoints.ReadState(resume).Position.Step;
        log.KeepUpTo(from);

        var cfg = variant.Config;
        using var model = XceptionBuilder.Build(cfg);
        model.InitializeByName(seed);
        model.Bind(device);
        var split = Split.Make(train.Count, 0, seed);
        var bound = DataBinding.Bind(train, split, o.Batch, cfg.ImageSize, cfg.InputChannels, o.Augment ? Augment.Default : null, seed, strict: false);
        var data = new TrainingData
        {
            TrainCount = bound.TrainCount, Classes = bound.Classes, MultiLabel = bound.MultiLabel, StepsPerEpoch = bound.StepsPerEpoch,
            TrainBatches = bound.TrainBatches, Skipped = bound.Skipped,
            ValidationCount = test.Count, ValidationBatches = () => TestBatches(test),
            Description = $"{bound.Description}; evaluated on {test.Description}",
        };
        var settings = new TrainSettings
        {
            Epochs = (int)Math.Min(int.MaxValue, (total + o.EvalEvery - 1) / o.EvalEvery),
            MaxSteps = total,
            Batch = o.Batch,
            Seed = seed,
            Optimizer = new OptimizerSettings { Kind = OptimizerKind.Sgd, Momentum = (float)o.Momentum, WeightDecay = (float)o.WeightDecay },
            Schedule = new LearningRateSchedule { BaseRate = o.LearningRate, Decay = o.Cosine ? DecayKind.Cosine : DecayKind.None, TotalSteps = total },
            CheckpointDir = dir,
            KeepCheckpoints = 2,
        };
        say($"{Label}: {cost.Params:N0} parameters, {cost.Macs / 1e6:N1} M multiply-adds per image; " +
            (resume is null ? "starting" : $"resuming at step {from} from {Path.GetFileName(resume)}"));
        var trainer = new Trainer(model, cfg, settings, this);
        try
        {
            trainer.Run(EvaluationIntervals.Of(data, o.EvalEvery), resume, stop);
        }
        catch (ResumeMismatchException e)
        {
            throw new ResumeMismatchException($"{Label}: the checkpoint in '{dir}' belongs to another run ({e.Message}); move the folder away to start it again");
        }
        catch (NonFiniteLossException e)
        {
            // The log keeps the run's evaluations so far (the table marks the step it reached).
            Failure = e.Message;
            say($"{Label}: stopped: {e.Message}");
            return rows.ToList();
        }
        LastCheckpoint = trainer.LastCheckpoint;
        Stopped = trainer.Stopped;
        if (Stopped) return rows.ToList();

        // A last interval shorter than the evaluation interval ends without the trainer's evaluation: evaluate here.
        if (rows.Count == 0 || rows[^1].Step < total)
        {
            var r = Evaluation.Run(model, TestBatches(test), cfg.Classes, multiLabel: false);
            var partial = last is { Validation: null } p && p.Step == total ? p : null;
            var row = partial is not null
                ? LogRow.Of(partial with { Validation = r }, log.ElapsedSeconds)
                : new LogRow(settings.Epochs, total, settings.Schedule.At(total - 1, 0, 0), null, null, null, null,
                    LogRow.Finite(r.Loss), LogRow.Finite(r.Top1), LogRow.Finite(r.Top5), null, null, log.ElapsedSeconds, null);
            Add(row);
        }
        return rows.ToList();
    }

    IEnumerable<TrainBatch> TestBatches(IDataSource test) =>
        DataBinding.All(test, o.Batch, variant.Config.ImageSize, variant.Config.InputChannels, strict: false);

    public void OnEpoch(EpochReport r)
    {
        last = r;
        if (r.Validation is null) return;
        Add(LogRow.Of(r, log.ElapsedSeconds));
    }

    public void OnCheckpoint(string path) => LastCheckpoint = path;

    public void OnWarning(string message) => say($"{Label}: warning: {message}");

    void Add(LogRow row)
    {
        log.Append(row);
        var t = TimeSpan.FromSeconds(row.ElapsedSeconds);
        say($"{Label}: step {row.Step}/{total}  loss {row.Loss?.ToString("F4") ?? "-"}  test loss {row.ValLoss:F4}  " +
            $"test acc {row.ValAcc * 100:F2}%  {row.ImagesPerSecond?.ToString("F1") ?? "-"} img/s  ({(int)t.TotalMinutes}:{t.Seconds:D2} training)");
    }
}
