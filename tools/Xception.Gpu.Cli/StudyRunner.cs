using System.Text.Json;
using Xception.Gpu.Data;
using Xception.Gpu.IO;
using Xception.Gpu.Models;
using Xception.Gpu.Training;

namespace Xception.Gpu.Cli;

/// <summary>One evaluation of a run: a line of its log.jsonl.</summary>
/// <param name="TrainLoss">mean training loss over the steps since the previous evaluation (null when none ran in this session)</param>
/// <param name="ElapsedSeconds">training time of the run so far (evaluations excluded)</param>
/// <param name="ImagesPerSecond">training images per second over the steps since the previous evaluation</param>
sealed record StudyLogRow(long Step, double? TrainLoss, double TestLoss, double TestTop1, double ElapsedSeconds, double? ImagesPerSecond, double LearningRate);

/// <summary>What a study knows of one variant: its cost and its runs' logs by seed.</summary>
sealed record StudyVariantResult(string Name, long Parameters, long MultiplyAdds, IReadOnlyDictionary<int, IReadOnlyList<StudyLogRow>> Runs);

/// <summary>
/// Runs a study: every (seed, variant) run in its own folder, seed by seed so that a study cut short has whole
/// comparisons; each run trains with the trainer on the data cut into evaluation intervals
/// (<see cref="EvaluationIntervals"/>), so its checkpoints and its resume are the trainer's.
/// </summary>
static class StudyRunner
{
    public const string SettingsFile = "study.json";
    public const string LogFile = "log.jsonl";

    internal static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = false };

    public static int Run(StudyOptions o)
    {
        var (train, test, note) = Sets(o);
        var baseConfig = BaseConfig(o, train);
        var variants = StudyVariants.Of(o, baseConfig).Select(v => v with { Config = v.Config.Validate() }).ToList();
        int stepsPerEpoch = (train.Count + o.Batch - 1) / o.Batch;
        long total = o.Steps ?? (long)o.Epochs!.Value * stepsPerEpoch;
        string dir = o.Out ?? Path.Combine("runs", $"study-{o.Study}-{DateTime.Now:yyyyMMdd-HHmmss}");
        OutputPaths.Folder("--out", dir);
        var stored = o.Stored(total);
        CheckSettings(dir, stored, o.Study);

        var spec = DeviceSpec.Parse(o.Device);
        using var device = Device.Open(spec, spec.Kind == DeviceKind.Cpu ? o.CpuThreads : null);
        var costs = variants.ToDictionary(v => v.Name, v =>
        {
            using var m = XceptionBuilder.Build(v.Config);
            return (m.TrainableParams, Cost.MultiplyAdds(m));
        });

        Console.WriteLine($"study {o.Study}: variants {string.Join(", ", variants.Select(v => v.Name))}; seeds 0 to {o.Seeds - 1}; {total} steps per run, " +
                          $"evaluated every {o.EvalEvery}; batch {o.Batch}, lr {o.LearningRate} {(o.Cosine ? "cosine to 0" : "constant")}, momentum {o.Momentum}");
        Console.WriteLine($"data: training {train.Description}; evaluation {test.Description}{note}");
        Console.WriteLine($"model: {o.Model} {baseConfig.ImageSize}x{baseConfig.ImageSize}x{baseConfig.InputChannels}, {baseConfig.Classes} classes; device {device}; folder {dir}");
        Console.WriteLine($"to continue after an interruption, run the same command with --out {dir}");

        using var stop = new StopSignal();
        var logs = variants.ToDictionary(v => v.Name, _ => new Dictionary<int, IReadOnlyList<StudyLogRow>>());
        var failures = new List<string>();
        for (int seed = 0; seed < o.Seeds; seed++)
            foreach (var v in variants)
            {
                var run = new StudyRun(o, v, seed, Path.Combine(dir, $"{v.Name}-seed{seed}"), total, device, costs[v.Name]);
                var rows = run.Train(train, test, stop.Token);
                logs[v.Name][seed] = rows;
                if (run.Stopped || stop.Token.IsCancellationRequested)
                {
                    Write(dir, o, stored, variants, costs, logs, device);
                    Console.Error.WriteLine($"xception: stopped by a signal; the study continues with the same command and --out {dir}" +
                                            (run.LastCheckpoint is { } ck ? $" (checkpoint {ck})" : ""));
                    return StopSignal.ExitCode;
                }
                if (run.Failure is not null) failures.Add($"{v.Name} seed {seed}");
                Write(dir, o, stored, variants, costs, logs, device);
            }

        var table = Write(dir, o, stored, variants, costs, logs, device);
        Console.WriteLine();
        Console.WriteLine(table);
        Console.WriteLine($"wrote {Path.Combine(dir, o.Study)}.png, .md, .csv and .json");
        if (failures.Count == 0) return 0;
        Console.Error.WriteLine($"xception: error: {string.Join(", ", failures)} stopped early: the loss stopped being a number (the table shows the step each reached; a lower --lr helps)");
        return 1;
    }

    static string Write(string dir, StudyOptions o, SortedDictionary<string, string> stored, List<StudyVariant> variants,
        Dictionary<string, (long Params, long Macs)> costs, Dictionary<string, Dictionary<int, IReadOnlyList<StudyLogRow>>> logs, Device device)
    {
        var results = variants.Select(v => new StudyVariantResult(v.Name, costs[v.Name].Params, costs[v.Name].Macs, logs[v.Name])).ToList();
        return StudyReport.Write(dir, o.Study, stored, results, device.ToString());
    }

    /// <summary>
    /// The training images and the evaluation images: the data's test split when it has one, else the last 10%
    /// of the training images after a shuffle with seed 0 (never trained on). Subsets are fixed: the same for
    /// every variant and seed.
    /// </summary>
    static (IDataSource Train, IDataSource Test, string Note) Sets(StudyOptions o)
    {
        var set = DataSources.Open(o.Data, 0);
        IDataSource train = set.Train, test;
        string note = "";
        if (set.Test is { } t) test = t;
        else
        {
            var split = Split.Make(train.Count, 0.1, 0);
            if (split.Validation.Length == 0) throw new XceptionException($"the data {train.Description} has no test split and too few images to hold 10% out");
            test = new SubsetSource(train, split.Validation, "held out: the data has no test split");
            train = new SubsetSource(train, split.Train, "the rest after holding 10% out");
            note = " (the data has no test split: 10% of the training images are held out)";
        }
        if (o.TrainImages is { } n && n < train.Count) train = SubsetSource.Shuffled(train, n, 0);
        if (o.TestImages < test.Count) test = SubsetSource.Shuffled(test, o.TestImages, 0);
        return (train, test, note);
    }

    static XceptionConfig BaseConfig(StudyOptions o, IDataSource train) => ModelForData.Config(o.Model, train, o.ImageSize);

    /// <summary>A new folder gets study.json; a folder with one must hold the same settings (one line names the first that differs), except the number of seeds.</summary>
    static void CheckSettings(string dir, SortedDictionary<string, string> stored, string study)
    {
        string path = Path.Combine(dir, SettingsFile);
        if (!File.Exists(path))
        {
            if (Directory.EnumerateFileSystemEntries(dir).Any())
                throw new UsageException($"--out '{dir}' is not empty and holds no {SettingsFile}: it is not a study folder; choose another --out");
            AtomicFile.Write(path, s => JsonSerializer.Serialize(s, stored, new JsonSerializerOptions { WriteIndented = true }));
            return;
        }
        Dictionary<string, string>? was;
        try { was = JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(path)); }
        catch (JsonException e) { throw new XceptionException($"'{path}' is not a study's settings ({e.Message.Split('\n')[0]})"); }
        bool moreSeeds = false;
        foreach (var (key, value) in stored)
        {
            string before = was?.GetValueOrDefault(key) ?? "(missing)";
            if (before == value) continue;
            // Each seed's runs are independent of how many seeds there are: a study can grow (or shrink) its seeds,
            // keeping the runs it has; the table covers seeds 0 to K-1.
            if (key == "--seeds") { moreSeeds = true; continue; }
            throw new UsageException(key == "study"
                ? $"--out '{dir}' holds the {before} study, not {study}; choose another --out"
                : $"--out '{dir}' holds a study run with {key} {before}, this command asks {value}: repeat the study's options to continue it, or choose another --out");
        }
        if (moreSeeds)
        {
            Console.WriteLine($"seeds: {was?.GetValueOrDefault("--seeds")} before, {stored["--seeds"]} now; the runs of the seeds kept are not trained again");
            AtomicFile.Write(path, s => JsonSerializer.Serialize(s, stored, new JsonSerializerOptions { WriteIndented = true }));
        }
    }
}

/// <summary>One variant with one seed: trains or resumes it in its folder, writes its log, and prints a line per evaluation.</summary>
sealed class StudyRun(StudyOptions o, StudyVariant variant, int seed, string dir, long total, Device device, (long Params, long Macs) cost) : ITrainingObserver
{
    readonly string logPath = Path.Combine(dir, StudyRunner.LogFile);
    readonly List<StudyLogRow> rows = new();
    EpochReport? last;

    public bool Stopped { get; private set; }
    /// <summary>Why the run could not finish (its loss stopped being a number), or null.</summary>
    public string? Failure { get; private set; }
    public string? LastCheckpoint { get; private set; }
    string Label => $"{variant.Name} seed {seed}";

    public IReadOnlyList<StudyLogRow> Train(IDataSource train, IDataSource test, CancellationToken stop)
    {
        rows.AddRange(ReadLog(logPath));
        if (rows.Count > 0 && rows[^1].Step >= total)
        {
            Console.WriteLine($"{Label}: finished earlier (top-1 {rows[^1].TestTop1 * 100:F2}% at step {rows[^1].Step})");
            return rows;
        }
        Directory.CreateDirectory(dir);
        foreach (var left in AtomicFile.RemoveLeftovers(dir)) Console.WriteLine($"removed {left} in {dir}, left by a write that was interrupted");
        string? resume = Checkpoints.List(dir).LastOrDefault();
        long from = resume is null ? 0 : Checkpoints.ReadState(resume).Position.Step;
        // The log keeps what the checkpoint covers; evaluations after it are done again.
        rows.RemoveAll(r => r.Step > from);
        RewriteLog();

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
        Console.WriteLine($"{Label}: {cost.Params:N0} parameters, {cost.Macs / 1e6:N1} M multiply-adds per image; " +
                          (resume is null ? "starting" : $"resuming at step {from} from {Path.GetFileName(resume)}"));
        var trainer = new Trainer(model, cfg, settings, this);
        try
        {
            trainer.Run(EvaluationIntervals.Of(data, o.EvalEvery), resume, stop);
        }
        catch (ResumeMismatchException e)
        {
            throw new XceptionException($"{Label}: the checkpoint in '{dir}' belongs to another run ({e.Message}); move the folder away to start it again");
        }
        catch (NonFiniteLossException e)
        {
            // A variant that diverges is a result too: the study goes on with the others, and its log keeps its
            // evaluations so far (the table marks the step it reached).
            Failure = e.Message;
            Console.WriteLine($"{Label}: stopped: {e.Message}");
            return rows;
        }
        LastCheckpoint = trainer.LastCheckpoint;
        Stopped = trainer.Stopped;
        if (Stopped) return rows;

        // A last interval shorter than --eval-every ends without the trainer's evaluation: evaluate here.
        if (rows.Count == 0 || rows[^1].Step < total)
        {
            var r = Evaluation.Run(model, TestBatches(test), cfg.Classes, multiLabel: false);
            var partial = last is { Validation: null } p && p.Step == total ? p : null;
            Add(new StudyLogRow(total, partial is null ? null : Finite(partial.Train.Loss), r.Loss, r.Top1, Elapsed(partial?.Seconds ?? 0),
                partial?.ImagesPerSecond, settings.Schedule.At(total - 1, 0, 0)));
        }
        return rows;
    }

    IEnumerable<TrainBatch> TestBatches(IDataSource test) =>
        DataBinding.All(test, o.Batch, variant.Config.ImageSize, variant.Config.InputChannels, strict: false);

    public void OnEpoch(EpochReport r)
    {
        last = r;
        if (r.Validation is not { } v) return;
        Add(new StudyLogRow(r.Step, Finite(r.Train.Loss), v.Loss, v.Top1, Elapsed(r.Seconds), r.ImagesPerSecond, r.LearningRate));
    }

    public void OnCheckpoint(string path) => LastCheckpoint = path;

    public void OnWarning(string message) => Console.WriteLine($"{Label}: warning: {message}");

    double Elapsed(double seconds) => (rows.Count > 0 ? rows[^1].ElapsedSeconds : 0) + seconds;

    static double? Finite(double x) => double.IsFinite(x) ? x : null;

    void Add(StudyLogRow row)
    {
        rows.Add(row);
        File.AppendAllText(logPath, JsonSerializer.Serialize(row, StudyRunner.Json) + "\n");
        var t = TimeSpan.FromSeconds(row.ElapsedSeconds);
        Console.WriteLine($"{Label}: step {row.Step}/{total}  loss {row.TrainLoss?.ToString("F4") ?? "-"}  test loss {row.TestLoss:F4}  " +
                          $"test acc {row.TestTop1 * 100:F2}%  {row.ImagesPerSecond?.ToString("F1") ?? "-"} img/s  ({(int)t.TotalMinutes}:{t.Seconds:D2} training)");
    }

    void RewriteLog() => AtomicFile.Write(logPath, s =>
    {
        using var w = new StreamWriter(s, leaveOpen: true);
        foreach (var r in rows) w.Write(JsonSerializer.Serialize(r, StudyRunner.Json) + "\n");
    });

    /// <summary>A run's log; a line cut short by an interruption (the last) is dropped.</summary>
    public static List<StudyLogRow> ReadLog(string path)
    {
        var list = new List<StudyLogRow>();
        if (!File.Exists(path)) return list;
        foreach (var line in File.ReadAllLines(path))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                if (JsonSerializer.Deserialize<StudyLogRow>(line, StudyRunner.Json) is { } r) list.Add(r);
            }
            catch (JsonException) { break; }
        }
        return list;
    }
}
