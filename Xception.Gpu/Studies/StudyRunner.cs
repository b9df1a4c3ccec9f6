using System.Text.Json;
using Xception.Gpu.Data;
using Xception.Gpu.IO;
using Xception.Gpu.Architecture;
using Xception.Gpu.Training;

namespace Xception.Gpu.Studies;

/// <summary>How a study ended: its results, the runs whose loss stopped being a number, and whether a stop request ended it early.</summary>
/// <param name="Results">the tables as written</param>
/// <param name="Failures">"variant seed s" of each run that diverged</param>
/// <param name="Stopped">whether the stop token ended the study before its last run</param>
/// <param name="LastCheckpoint">the newest checkpoint written when it was stopped</param>
public sealed record StudyOutcome(StudyResults Results, IReadOnlyList<string> Failures, bool Stopped, string? LastCheckpoint);

/// <summary>
/// A study in its folder: every (seed, variant) run in a subfolder of its own, seed by seed so that a study cut short
/// has whole comparisons. Each run trains with the <see cref="Trainer"/> on the data cut into evaluation intervals
/// (<see cref="EvaluationIntervals"/>), so its checkpoints and its resume are the trainer's; a finished run is not
/// trained again, an unfinished one resumes from its newest checkpoint. A run that diverges is a result too: the
/// study goes on with the others.
/// </summary>
public sealed class StudyRunner
{
    /// <summary>The settings file of a study folder.</summary>
    public const string SettingsFile = "study.json";
    /// <summary>The log of each run (see <see cref="TrainingLog"/>).</summary>
    public const string LogFile = "log.jsonl";

    readonly StudySettings settings;
    readonly SortedDictionary<string, string> stored;
    readonly Action<string> say;

    /// <summary>
    /// Opens the data, makes the variants, and checks the folder: an empty or new folder becomes the study's (its
    /// settings are written to <see cref="SettingsFile"/>); a study folder must hold the same settings, except the
    /// number of seeds (<see cref="StudyFolderException"/> names the first that differs).
    /// </summary>
    /// <param name="settings">the study</param>
    /// <param name="folder">the study's folder</param>
    /// <param name="say">receives a line per event (a run starting, resuming or finished, an evaluation)</param>
    public StudyRunner(StudySettings settings, string folder, Action<string>? say = null)
    {
        this.settings = settings;
        this.say = say ?? (_ => { });
        Folder = folder;
        (Train, Test, DataNote) = Sets(settings);
        BaseConfig = ModelForData.Config(settings.Model, Train, settings.ImageSize);
        Variants = StudyVariants.Of(settings, BaseConfig).Select(v => v with { Config = v.Config.Validate() }).ToList();
        int stepsPerEpoch = (Train.Count + settings.Batch - 1) / settings.Batch;
        StepsPerRun = settings.Steps ?? (long)(settings.Epochs ?? 1) * stepsPerEpoch;
        stored = settings.Stored(StepsPerRun);
        CheckFolder();
    }

    /// <summary>The study's folder.</summary>
    public string Folder { get; }
    /// <summary>The training images (a fixed subset when the settings ask for one).</summary>
    public IDataSource Train { get; }
    /// <summary>The evaluation images: the data's test split, or 10% of the training images held out when it has none.</summary>
    public IDataSource Test { get; }
    /// <summary>Empty, or a note that the evaluation images are held out of the training images.</summary>
    public string DataNote { get; }
    /// <summary>The model the variants change.</summary>
    public XceptionConfig BaseConfig { get; }
    /// <summary>The variants, in the table's order.</summary>
    public IReadOnlyList<StudyVariant> Variants { get; }
    /// <summary>Optimizer steps per run.</summary>
    public long StepsPerRun { get; }

    /// <summary>Called after every run with the tables just written (a plot can be drawn from them).</summary>
    public Action<StudyResults>? ResultsWritten { get; init; }

    /// <summary>Trains every run that has not finished on <paramref name="device"/>; <paramref name="stop"/> ends the study after the current step, with a checkpoint.</summary>
    public StudyOutcome Run(Device device, CancellationToken stop)
    {
        var costs = Variants.ToDictionary(v => v.Name, v =>
        {
            using var m = XceptionBuilder.Build(v.Config);
            return (m.TrainableParams, Cost.MultiplyAdds(m));
        });
        var logs = Variants.ToDictionary(v => v.Name, _ => new Dictionary<int, IReadOnlyList<LogRow>>());
        var failures = new List<string>();
        StudyResults Write()
        {
            var results = Variants.Select(v => new StudyVariantResult(v.Name, costs[v.Name].TrainableParams, costs[v.Name].Item2, logs[v.Name])).ToList();
            var written = StudyReport.Write(Folder, settings.Study, stored, results, device.ToString());
            ResultsWritten?.Invoke(written);
            return written;
        }
        for (int seed = 0; seed < settings.Seeds; seed++)
            foreach (var v in Variants)
            {
                var run = new StudyRun(settings, v, seed, Path.Combine(Folder, $"{v.Name}-seed{seed}"), StepsPerRun, costs[v.Name], say);
                logs[v.Name][seed] = run.Train(device, Train, Test, stop);
                if (run.Stopped || stop.IsCancellationRequested) return new StudyOutcome(Write(), failures, true, run.LastCheckpoint);
                if (run.Failure is not null) failures.Add($"{v.Name} seed {seed}");
                Write();
            }
        return new StudyOutcome(Write(), failures, false, null);
    }

    /// <summary>
    /// The training images and the evaluation images: the data's test split when it has one, else the last 10%
    /// of the training images after a shuffle with seed 0 (never trained on). Subsets are fixed: the same for
    /// every variant and seed.
    /// </summary>
    static (IDataSource Train, IDataSource Test, string Note) Sets(StudySettings o)
    {
        var set = DataSources.Open(o.Data, 0);
        IDataSource train = set.Train, test;
        string note = "";
        if (set.Test is { } t) test = t;
        else
        {
            var split = Split.Make(train.Count, 0.1, 0);
            if (split.Validation.Length == 0) throw new DataException(o.Data, $"the data {train.Description} has no test split and too few images to hold 10% out");
            test = new SubsetSource(train, split.Validation, "held out: the data has no test split");
            train = new SubsetSource(train, split.Train, "the rest after holding 10% out");
            note = " (the data has no test split: 10% of the training images are held out)";
        }
        if (o.TrainImages is { } n && n < train.Count) train = SubsetSource.Shuffled(train, n, 0);
        if (o.TestImages < test.Count) test = SubsetSource.Shuffled(test, o.TestImages, 0);
        return (train, test, note);
    }

    static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    void CheckFolder()
    {
        Directory.CreateDirectory(Folder);
        string path = Path.Combine(Folder, SettingsFile);
        if (!File.Exists(path))
        {
            if (Directory.EnumerateFileSystemEntries(Folder).Any()) throw new StudyFolderException(Folder, null, null, null);
            AtomicFile.Write(path, s => JsonSerializer.Serialize(s, stored, Indented));
            return;
        }
        Dictionary<string, string> was;
        try { was = StudySettings.Normalize(JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(path)) ?? new()); }
        catch (JsonException e) { throw new StudyFolderException(Folder, $"'{path}' is not a study's settings ({e.Message.Split('\n')[0]})"); }
        bool seeds = false;
        foreach (var (key, value) in stored)
        {
            string before = was.GetValueOrDefault(key) ?? "(missing)";
            if (before == value) continue;
            // Each seed's runs are independent of how many seeds there are: a study can grow (or shrink) its seeds,
            // keeping the runs it has; the table covers seeds 0 to K-1.
            if (key == "seeds") { seeds = true; continue; }
            throw new StudyFolderException(Folder, key, before, value);
        }
        if (seeds)
        {
            say($"seeds: {was.GetValueOrDefault("seeds")} before, {stored["seeds"]} now; the runs of the seeds kept are not trained again");
            AtomicFile.Write(path, s => JsonSerializer.Serialize(s, stored, Indented));
        }
    }
}
