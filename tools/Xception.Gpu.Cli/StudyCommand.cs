using Xception.Gpu.Architecture;
using Xception.Gpu.Studies;

namespace Xception.Gpu.Cli;

/// <summary>
/// `xception study residual|activation|segments`: the paper's ablations, each variant trained on the same data in
/// the same order from the same seeds. The options and the printing live here; the study itself is the library's
/// <see cref="StudyRunner"/>, its tables <see cref="StudyReport"/>, its plot <see cref="Plots.Study"/>.
/// </summary>
static class StudyCommand
{
    public static CliCommand Definition => new("study", "the paper's experiments: residual, activation or segments variants trained side by side", Run, """
        xception study residual|activation|segments [options]

        Trains every variant of a study on the same data, in the same order, from the same seeds (only the
        switch differs), evaluates each on the test set every --eval-every steps, and writes into --out: per-run
        logs and checkpoints, <study>.png (test accuracy against steps, one curve per variant, the min-max band
        over seeds when --seeds > 1) and <study>.md/.csv/.json (final top-1 with its spread over seeds,
        parameters, multiply-adds per image, measured training images/s).

          residual     with and without residual connections (the paper's Figure 9)
          activation   no activation, ReLU or ELU between the depthwise and the pointwise convolution (Figure 10)
          segments     the spatial convolution of every separable layer in k channel segments: 1 is a regular
                       3x3 convolution (the Inception end), 0 depthwise (Xception), values between are grouped

        Started again with the same options and --out, a study continues: finished runs are kept, unfinished
        ones resume from their newest checkpoint exactly where they stopped. Ctrl-C finishes the step, writes a
        checkpoint and says how to continue. A run whose loss stops being a number ends there; the others go on.

        example (about 25 minutes on two CPU cores; the README lists one for each study):
          xception study residual --steps 800 --eval-every 100 --test-images 1000 --out runs/study-residual
        """)
    {
        Files("STUDY", "residual, activation or segments"),
        Value("data", "D", "fashion-mnist (default), mnist, synthetic[:N], or a folder as 'xception train' takes; its test split is the evaluation set (10% of the training set when it has none)"),
        Choice("model", ["xception-mini", "xception"], "the model (default xception-mini)"),
        Value("image-size", "S", "input size (default: the data's size for xception-mini, 299 for xception)"),
        Value("train-images", "N", "train on a fixed subset: the first N after a seeded shuffle (default: all)"),
        Value("test-images", "N", "evaluate on the first N test images after a seeded shuffle (default 2000)"),
        Value("segments", "L", $"the segments study's values (default {DefaultSegments}, valid for both models: every value must divide the input channels of every separable layer; 0 is depthwise)"),
        Flag("no-augment", "no random crop-and-scale or flips"),
        Value("steps", "N", "optimizer steps per run (default 1000)"),
        Value("epochs", "E", "or E passes over the training images"),
        Value("eval-every", "N", "evaluate and checkpoint every N steps (default 100)"),
        Value("seeds", "K", "runs per variant, seeds 0 to K-1 (default 1): initial weights and data order"),
        Value("batch", "B", "images per step (default 32)"),
        SgdOptions.Group,
        Choice("lr-schedule", ["cosine", "constant"], "the learning rate over the run (default cosine, to 0)"),
        Value("out", "DIR", "the study's folder (default runs/study-<study>-<time>); give the same DIR again to continue a study"),
        DeviceOption(),
        PrecisionOption.Declare(),
        Value("cpu-threads", "N", "cores the CPU device runs on (default: all)"),
    };

    /// <summary>The default --segments: every value divides 8, which divides every separable layer's input channels of both models.</summary>
    public const string DefaultSegments = "1,2,4,8,0";

    static int Run(Args a)
    {
        var (o, folder) = Parse(a);
        string dir = folder ?? Path.Combine("runs", $"study-{o.Study}-{DateTime.Now:yyyyMMdd-HHmmss}");
        OutputPaths.Folder("--out", dir);
        StudyRunner runner;
        try
        {
            runner = new StudyRunner(o, dir, Console.WriteLine) { ResultsWritten = Plots.Study };
        }
        catch (StudySettingException e)
        {
            throw new UsageException($"{Option(e.Setting)} {e.Problem}");
        }
        catch (StudyFolderException e)
        {
            throw new UsageException(e.Setting switch
            {
                null => $"--out '{dir}' is not empty and holds no {StudyRunner.SettingsFile}: it is not a study folder; choose another --out",
                "study" => $"--out '{dir}' holds the {e.Before} study, not {e.Now}; choose another --out",
                _ => $"--out '{dir}' holds a study run with {Option(e.Setting)} {e.Before}, this command asks {e.Now}: repeat the study's options to continue it, or choose another --out",
            });
        }

        var spec = DeviceSpec.Parse(a.String("device", "auto"));
        int? threads = a.String("cpu-threads") is null ? null : a.Int("cpu-threads", 1, 1, Device.MaxCpuThreads);
        using var device = Device.Open(spec, spec.Kind == DeviceKind.Cpu ? threads : null);
        device.Precision = PrecisionOption.Read(a);
        var b = runner.BaseConfig;
        Console.WriteLine($"study {o.Study}: variants {string.Join(", ", runner.Variants.Select(v => v.Name))}; seeds 0 to {o.Seeds - 1}; {runner.StepsPerRun} steps per run, " +
                          $"evaluated every {o.EvalEvery}; batch {o.Batch}, lr {o.LearningRate} {(o.Cosine ? "cosine to 0" : "constant")}, momentum {o.Momentum}");
        Console.WriteLine($"data: training {runner.Train.Description}; evaluation {runner.Test.Description}{runner.DataNote}");
        Console.WriteLine($"model: {o.Model} {b.ImageSize}x{b.ImageSize}x{b.InputChannels}, {b.Classes} classes; device {device}; folder {dir}");
        Console.WriteLine($"to continue after an interruption, run the same command with --out {dir}");

        using var stop = new StopSignal();
        var outcome = runner.Run(device, stop.Token);
        if (outcome.Stopped)
        {
            Console.Error.WriteLine($"xception: stopped by a signal; the study continues with the same command and --out {dir}" +
                                    (outcome.LastCheckpoint is { } ck ? $" (checkpoint {ck})" : ""));
            return StopSignal.ExitCode;
        }
        Console.WriteLine();
        Console.WriteLine(outcome.Results.Table);
        Console.WriteLine($"wrote {Path.Combine(dir, o.Study)}.png, .md, .csv and .json");
        if (outcome.Failures.Count == 0) return 0;
        Console.Error.WriteLine($"xception: error: {string.Join(", ", outcome.Failures)} stopped early: the loss stopped being a number (the table shows the step each reached; a lower --lr helps)");
        return 1;
    }

    /// <summary>The option that sets a stored setting (<see cref="StudySettings.Stored"/>).</summary>
    static string Option(string setting) => setting switch
    {
        "augment" => "augmentation",
        "study" => "study",
        _ => "--" + setting.Replace('_', '-'),
    };

    /// <summary>Every option of the command, checked, into the study's settings and its folder (the only place that reads the command line).</summary>
    static (StudySettings Settings, string? Folder) Parse(Args a)
    {
        if (a.Positional.Count != 1)
            throw new UsageException(a.Positional.Count == 0
                ? "'study' needs the study to run: residual, activation or segments"
                : $"'study' runs one study, got '{string.Join(" ", a.Positional)}'");
        string study = a.Positional[0].ToLowerInvariant();
        if (!StudySettings.Names.Contains(study))
            throw new UsageException($"unknown study '{a.Positional[0]}'; studies: {string.Join(", ", StudySettings.Names)}");
        if (a.String("segments") is not null && study != "segments")
            throw new UsageException($"--segments belongs to the segments study, not '{study}'");
        if (a.String("steps") is not null && a.String("epochs") is not null)
            throw new UsageException("give --steps or --epochs, not both");
        string model = ModelOption.Read(a, ModelPresets.Mini);
        string schedule = a.String("lr-schedule", "cosine").ToLowerInvariant();
        if (schedule is not ("cosine" or "constant"))
            throw new UsageException($"--lr-schedule must be cosine or constant, got '{schedule}'");
        var settings = new StudySettings
        {
            Study = study,
            Data = a.String("data", "fashion-mnist"),
            Model = model,
            ImageSize = a.String("image-size") is null ? null : a.Int("image-size", 0, 5, 8192),
            TrainImages = a.String("train-images") is null ? null : a.Int("train-images", 0, 1),
            TestImages = a.Int("test-images", 2000, 1),
            Segments = study == "segments" ? SegmentList(a.String("segments", DefaultSegments)) : [],
            Steps = a.String("epochs") is null ? a.Int("steps", 1000, 1) : null,
            Epochs = a.String("epochs") is null ? null : a.Int("epochs", 0, 1, 100000),
            EvalEvery = a.Int("eval-every", 100, 1),
            Seeds = a.Int("seeds", 1, 1, 1000),
            Batch = a.Int("batch", 32, 1, 65536),
            LearningRate = SgdOptions.LearningRate(a, 0.05),
            Cosine = schedule == "cosine",
            Momentum = SgdOptions.Momentum(a, 0.9),
            WeightDecay = SgdOptions.WeightDecay(a, 0),
            Augment = !a.Flag("no-augment"),
        };
        return (settings, a.String("out"));
    }

    /// <summary>"1,4,0" to its values: whole numbers >= 0, each once.</summary>
    static int[] SegmentList(string text)
    {
        var values = text.Split(',').Select(s => s.Trim()).Select(s =>
            int.TryParse(s, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int v)
                ? v : throw new UsageException($"--segments: '{s}' is not a whole number >= 0 (a list such as {DefaultSegments}; 0 is depthwise)")).ToArray();
        if (values.Distinct().Count() != values.Length) throw new UsageException($"--segments names a value twice: '{text}'");
        return values;
    }
}
