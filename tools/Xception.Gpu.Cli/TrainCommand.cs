using Xception.Gpu.Imaging;
using Xception.Gpu.Data;
using Xception.Gpu.IO;
using Xception.Gpu.Architecture;
using Xception.Gpu.Parallel;
using Xception.Gpu.Training;

namespace Xception.Gpu.Cli;

static class TrainCommand
{
    public static CliCommand Definition => new("train", "train a model (no options: xception-mini on built-in synthetic images)", Run, """
        Trains Xception on a data set. With no options: the small model (xception-mini) on the built-in
        synthetic images, on the best device, for 3 epochs; prints each epoch's validation accuracy.
        The options come in four groups: data and model, optimization, output, devices. A --recipe sets the
        optimizer, schedule and dropout of one of the paper's recipes; the options after it override it.
        """)
    {
        // data and model
        Value("data", "D", "synthetic[:N] (default synthetic:2500), fashion-mnist, mnist, a folder of class subfolders, " +
                           "a folder of IDX or CIFAR-10 binary files, or a multi-label list file"),
        Choice("model", ["xception-mini", "xception"], "xception-mini (default; 28x28 / 32x32 inputs) or xception"),
        Value("classes", "C", "must equal the data's class count (a check)"),
        Value("image-size", "S", "input size (default: the data's size for xception-mini, 299 for xception)"),
        Value("weights", "W", "initial weights: a Keras .h5 or a checkpoint"),
        Flag("new-head", "transfer learning: keep W's weights below the classifier, start a fresh 'predictions' for the " +
                         "data's classes (W may have any classes, or no top)"),
        Choice("freeze", ["base", "none"], "base (every layer below the classifier), none (default), or a layer name: " +
                                           "every layer up to and including it, in model order", helpName: "base|none|LAYER"),
        Choice("bn-mode", ["auto", "train", "inference"], "auto (default: frozen batch norm in inference mode), train, or " +
                                                          "inference (every batch norm in inference mode; fine-tuning's phase 2)"),
        Value("val-split", "F", "fraction held out for validation (default 0.1; 0 trains on everything)"),
        Value("augment", "A", "scale-crop (default: a random crop of 60-100% of the area, resized, and a random flip), " +
                              "shift[:P] (the image moved by up to P pixels, default 4, black where it left, and a random flip: " +
                              "the usual augmentation of small images), or none"),
        Flag("no-augment", "the same as --augment none"),
        Value("random-erasing", "P", "with probability P, replace a random rectangle (2-40% of the input, aspect ratio 0.3-3.3) " +
                                     "with random values (Zhong et al. 2020; default 0)"),
        Flag("strict", "stop at an unreadable image instead of skipping it (skips are counted)"),
        Value("max-image-pixels", "N", "refuse images that declare more pixels (default 89,478,485, PIL's limit)"),
        // optimization
        Choice("recipe", ["imagenet", "jft"], "imagenet (SGD 0.9, lr 0.045 x 0.94 every 2 epochs, weight decay 1e-5, dropout 0.5) " +
                                              "or jft (RMSprop 0.9, lr 0.001 x 0.9 every 3,000,000 samples, multi-label sigmoid " +
                                              "outputs, no dropout); the options below override it"),
        Value("epochs", "E", "epochs (default 3)"),
        Value("steps", "N", "stop after N optimizer steps"),
        Value("batch", "B", "images per step, over all replicas (default 32)"),
        Value("seed", "S", "seed of the initial weights, the split, the order and the augmentation (default 0)"),
        Choice("optimizer", ["sgd", "rmsprop"], "sgd (default) or rmsprop"),
        SgdOptions.Group,
        Flag("nesterov", "Nesterov momentum"),
        Value("rho", "R", "RMSprop decay (default 0.9)"),
        Value("epsilon", "E", "RMSprop epsilon (default 1e-7)"),
        Value("dropout", "P", "dropout before the classifier (default 0)"),
        Value("label-smoothing", "E", "label smoothing (default 0)"),
        Value("warmup-steps", "N", "linear learning-rate warm-up over the first N steps (default 0)"),
        Choice("lr-schedule", ["constant", "exponential", "step", "cosine"],
            "constant, exponential (x --lr-decay every --lr-decay-epochs epochs, or every --lr-decay-samples samples), " +
            "step (x --lr-decay at --lr-steps e1,e2,...), cosine (default)", helpName: "S"),
        Value("lr-decay", "F", "the factor of exponential and step schedules (default 0.94)"),
        Value("lr-decay-epochs", "E", "exponential schedule: decay every E epochs (default 2)"),
        Value("lr-decay-samples", "N", "exponential schedule: decay every N samples instead"),
        Value("lr-steps", "E1,E2,...", "step schedule: the epochs at which the rate is multiplied by --lr-decay"),
        // output
        Value("checkpoint-dir", "D", "checkpoints, log and plot (default runs/<model>-<data>-<time>)"),
        Value("checkpoint-every", "N", "also checkpoint every N steps (default 0: at each epoch's end only)"),
        Value("keep", "K", "checkpoints kept (default 3)"),
        Value("resume", "P", "continue from a checkpoint file or the newest in a folder"),
        Value("save", "F", "final weights (.h5: Keras format; else a checkpoint; default <dir>/final.safetensors)"),
        Value("log", "F", "per-epoch log, JSON lines or .csv (default <dir>/log.jsonl)"),
        Value("plot", "F", "loss and accuracy curves, PNG (default <dir>/curves.png)"),
        Value("verify-every", "N", "with several replicas: check every N steps that they hold identical weights (default 100)"),
        // devices
        ReplicaOptions.Group,
    };

    /// <summary>The no-option run: 2,500 synthetic images (2,250 to train), 3 epochs: under 5 minutes on 2 CPU cores.</summary>
    const string DefaultData = "synthetic:2500";

    static int Run(Args a)
    {
        a.ApplyImageLimit();
        using var placement = new ReplicaOptions(a);
        if (placement.Mpi is not { Size: > 1 } mpi) return Train(a, placement);
        try
        {
            int code = Train(a, placement);
            mpi.Dispose(); // MPI_Finalize: every rank gets here after the same last collective
            return code;
        }
        catch (RunStoppedException e)
        {
            // Every rank stopped at the same step (one could not load its data): finish MPI cleanly.
            Console.Error.WriteLine($"xception: error: rank {mpi.Rank} of {mpi.Size} ({mpi.Host}): {e.Message}");
            mpi.Dispose();
            return 1;
        }
        catch (Exception e)
        {
            // One rank failed: say why, then end every rank (the others would wait in an all-reduce forever).
            // Checkpoints are written atomically, so the last one stays whole.
            string what = e is XceptionException or UsageException ? e.Message : $"internal error: {e.GetType().Name}: {e.Message}";
            Console.Error.WriteLine($"xception: error: rank {mpi.Rank} of {mpi.Size} ({mpi.Host}): {what}; stopping every rank");
            if (Environment.GetEnvironmentVariable("XCEPTION_DEBUG") == "1") Console.Error.WriteLine(e);
            Console.Error.Flush();
            Console.Out.Flush();
            mpi.Abort(e is UsageException ? 2 : 1);
            return 1;
        }
    }

    /// <summary>--augment, --no-augment and --random-erasing as one <see cref="Augment"/> (null: none).</summary>
    static Augment? ReadAugment(Args a)
    {
        string spec = a.String("augment") ?? (a.Flag("no-augment") ? "none" : "scale-crop");
        if (a.Flag("no-augment") && spec != "none") throw new UsageException($"--no-augment contradicts --augment {spec}");
        double erase = a.Double("random-erasing", 0, 0, 1);
        Augment? augment = spec switch
        {
            "scale-crop" => Augment.Default,
            "none" => null,
            "shift" => Augment.Shift(4),
            _ when spec.StartsWith("shift:", StringComparison.Ordinal) =>
                int.TryParse(spec.AsSpan(6), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int p) && p is >= 1 and <= 64
                    ? Augment.Shift(p)
                    : throw new UsageException($"--augment shift:P takes a whole number of pixels from 1 to 64, got '{spec}'"),
            _ => throw new UsageException($"--augment must be scale-crop, shift[:P] or none, got '{spec}'"),
        };
        if (erase > 0 && augment is null) throw new UsageException("--random-erasing is augmentation: it needs --augment scale-crop or shift");
        return erase > 0 ? augment! with { EraseProbability = erase } : augment;
    }

    static int Train(Args a, ReplicaOptions placement)
    {
        bool root = placement.IsRoot;
        void Say(string line) { if (root) Console.WriteLine(line); }

        int seed = a.Int("seed", 0, 0, int.MaxValue);
        string dataSpec = a.String("data", DefaultData);
        var data = DataSources.Open(dataSpec, seed);
        var source = data.Train;
        string modelName = ModelOption.Read(a, ModelPresets.Mini);
        if (a.String("classes") is not null && a.Int("classes", 0, 1) != source.Classes)
            throw new XceptionException($"--classes {a.Int("classes", 0, 1)} but the data has {source.Classes} classes");

        var config = ModelConfig(a, modelName, source);
        var recipe = a.String("recipe") is { } rn ? TrainingRecipe.Find(rn) ?? throw new UsageException($"--recipe must be imagenet or jft, got '{rn}'") : null;
        if (recipe?.MultiLabel == true && !source.MultiLabel)
            throw new XceptionException($"--recipe {recipe.Name} trains multi-label sigmoid outputs, but the data is single-label (use a list file with several labels per image)");
        config = (config with { Dropout = (float)a.Double("dropout", recipe?.Dropout ?? 0, 0, 0.99) }).Validate();

        var settings = Settings(a, recipe, seed);
        string runDir = a.String("checkpoint-dir") ?? Path.Combine("runs", $"{modelName}-{DataName(dataSpec)}-{StartTime(placement):yyyyMMdd-HHmmss}");
        settings = settings with { CheckpointDir = runDir, VerifyEvery = a.Int("verify-every", 100, 0) };
        if (settings.Batch < placement.GlobalReplicas)
            throw new XceptionException($"--batch {settings.Batch} cannot be split over {placement.GlobalReplicas} replicas: each needs at least one image");
        double valSplit = a.Double("val-split", 0.1, 0, 0.9);
        var split = Split.Make(source.Count, valSplit, seed);
        var augment = ReadAugment(a);
        var shard = placement.Mpi is { Size: > 1 } m ? new BatchShard(m.Rank * placement.Devices.Count, placement.Devices.Count, placement.GlobalReplicas) : null;
        var bound = DataBinding.Bind(source, split, settings.Batch, config.ImageSize, config.InputChannels, augment, seed, a.Flag("strict"), shard);
        settings = settings with { Schedule = settings.Schedule with { TotalSteps = Math.Min((long)settings.Epochs * bound.StepsPerEpoch, settings.MaxSteps ?? long.MaxValue) } };

        string? resume = a.String("resume") is { } r ? ResolveResume(r) : null;
        if (resume is not null && a.String("checkpoint-dir") is null) settings = settings with { CheckpointDir = runDir = Path.GetDirectoryName(Path.GetFullPath(resume))! };
        if (resume is null && Checkpoints.List(runDir).Count > 0)
            throw new XceptionException($"'{runDir}' already holds checkpoints of a run: pass --resume {runDir} to continue it, or choose another --checkpoint-dir");
        string save = a.String("save") ?? Path.Combine(runDir, "final.safetensors");
        string logPath = a.String("log") ?? Path.Combine(runDir, "log.jsonl");
        string plotPath = a.String("plot") ?? Path.Combine(runDir, "curves.png");
        if (root)
        {
            // Every output is checked before the first step, so that no run trains and then cannot save.
            OutputPaths.Folder("--checkpoint-dir", runDir);
            foreach (var (option, path) in new[] { ("--save", save), ("--log", logPath), ("--plot", plotPath) }) OutputPaths.WritableFile(option, path);
            foreach (var dir in new[] { runDir, Path.GetDirectoryName(Path.GetFullPath(save))! }.Distinct())
                foreach (var left in Xception.Gpu.IO.AtomicFile.RemoveLeftovers(dir))
                    Say($"removed {left} in {dir}, left by a write that was interrupted");
        }
        if (source.Classes < 2)
            Say($"warning: the data has {source.Classes} class: a classifier has nothing to learn (its loss is 0 from the start)");

        var device = placement.Devices[0];
        using var model = XceptionBuilder.Build(config);
        if (a.String("weights") is { } w)
        {
            if (a.Flag("new-head"))
            {
                var loaded = ModelWeights.Load(model, w, new WeightsLoadOptions { NewHead = true, Seed = seed });
                Say($"loaded {loaded.Loaded.Count} layers from {w}; started fresh: {string.Join(", ", loaded.Fresh)}");
            }
            else ModelWeights.Load(model, w);
        }
        else model.Initialize(seed);
        ApplyFreezing(a, model, resume);
        model.Bind(device);
        using var replicas = DataParallel.Around(model, () => XceptionBuilder.Build(config), placement.Devices, settings.Optimizer,
            placement.SyncBatchNorm, placement.Mpi);
        replicas.BucketBytes = placement.BucketBytes;

        Say($"data: {source.Description}; {split.Train.Length} training, {split.Validation.Length} validation images");
        Say($"model: {modelName} {config.ImageSize}x{config.ImageSize}x{config.InputChannels}, {config.Classes} classes, {model.TotalParams:N0} parameters; {placement.Describe(settings.Batch)}{PrecisionOption.Describe(device)}");
        var frozen = model.FrozenLayers;
        Say($"frozen: {(frozen.Count == 0 ? "nothing" : $"{frozen.Count} layers, {frozen[0]} to {frozen[^1]}")}; {model.TrainableParams:N0} trainable parameters; batch norm mode {model.BatchNormMode.ToString().ToLowerInvariant()}");
        Say($"optimizer: {settings.Optimizer.Kind} lr {settings.Schedule}, momentum {settings.Optimizer.Momentum}, weight decay {settings.Optimizer.WeightDecay}; batch {settings.Batch}, {settings.Epochs} epochs" +
            (settings.MaxSteps is { } ms ? $", at most {ms} steps" : "") + $"; run folder {runDir}");

        // Only the first rank reports and writes the log; the others train silently.
        var reporting = root ? new TrainReporting(logPath, plotPath, resume is null ? null : Checkpoints.ReadState(resume).Position.Step) : null;
        var trainer = new Trainer(replicas, config, settings, reporting);
        using var stop = new StopSignal();
        var reports = reporting is null ? Run(trainer, bound, resume, stop.Token) : reporting.Run(() => Run(trainer, bound, resume, stop.Token));

        if (trainer.Stopped)
        {
            if (root)
                Console.Error.WriteLine($"xception: stopped by a signal; the run continues with: xception train --resume {runDir} (and the same options)" +
                    (trainer.LastCheckpoint is { } ck ? $"; checkpoint {ck}" : ""));
            return StopSignal.ExitCode;
        }
        if (!root) return 0;
        ModelWeights.Save(model, config, save);
        Console.WriteLine($"saved {save}");
        var last = reports.LastOrDefault(r => r.Validation is not null)?.Validation;
        if (last is not null)
            Console.WriteLine(double.IsNaN(last.Top1) ? $"validation MAP@100: {last.MapAt100:P2}" : $"validation accuracy: {last.Top1:P2} (top-5 {last.Top5:P2})");
        return 0;
    }

    /// <summary>
    /// --freeze and --bn-mode on the model; a resumed run takes its checkpoint's, and refuses an explicit option
    /// that says otherwise (the optimizer state and the weights belong to what the run froze).
    /// </summary>
    static void ApplyFreezing(Args a, Xception.Gpu.Graph.Model model, string? resume)
    {
        string? freeze = a.String("freeze"), bnMode = a.String("bn-mode");
        switch (freeze?.ToLowerInvariant())
        {
            case null or "none": model.Unfreeze(); break;
            case "base": model.FreezeBase(); break;
            default:
                try { model.Freeze(upTo: freeze); }
                catch (XceptionException e) { throw new UsageException($"--freeze must be base, none or a layer name: {e.Message}"); }
                break;
        }
        if (bnMode is not null)
            model.BatchNormMode = bnMode.ToLowerInvariant() switch
            {
                "auto" => Xception.Gpu.Graph.BatchNormMode.Auto,
                "train" => Xception.Gpu.Graph.BatchNormMode.Train,
                "inference" => Xception.Gpu.Graph.BatchNormMode.Inference,
                _ => throw new UsageException($"--bn-mode must be auto, train or inference, got '{bnMode}'"),
            };
        if (resume is null) return;
        try { Checkpoints.ResumeTrainingMode(Checkpoints.ReadState(resume), model, freeze is not null, bnMode is not null, resume); }
        catch (ResumeMismatchException e) when (e.Setting is { } setting)
        {
            string given = setting == "freeze" ? $"--freeze {freeze}" : $"--bn-mode {bnMode}";
            throw new XceptionException($"{given}: {e.Message}; leave out --{setting} to continue it as it was", e);
        }
    }

    /// <summary>The checkpoint --resume names (a file, or the newest in a folder).</summary>
    static string ResolveResume(string pathOrDir)
    {
        try
        {
            return Checkpoints.Resolve(pathOrDir);
        }
        catch (CheckpointNotFoundException e)
        {
            throw new XceptionException($"--resume: {e.Message}", e);
        }
    }

    /// <summary>Runs the trainer; its errors that the user fixes with an option name that option.</summary>
    static List<EpochReport> Run(Trainer trainer, TrainingData data, string? resume, CancellationToken stop)
    {
        try
        {
            return trainer.Run(data, resume, stop);
        }
        catch (ResumeMismatchException e)
        {
            throw new XceptionException($"--resume: {e.Message}", e);
        }
        catch (TrainingOutOfMemoryException e)
        {
            throw new DeviceException(e.Message + (e.FittingBatch >= 1 ? $" (--batch {e.FittingBatch})" : " (--image-size)"), e);
        }
    }

    /// <summary>The run's start time, rank 0's under MPI (it names the default run folder, which all ranks share).</summary>
    static DateTime StartTime(ReplicaOptions placement)
    {
        var now = DateTime.Now;
        if (placement.Mpi is not { Size: > 1 } mpi) return now;
        var t = new double[1];
        if (mpi.Rank == 0) t[0] = now.Ticks / TimeSpan.TicksPerSecond;
        mpi.AllReduceSum(t);
        return new DateTime((long)t[0] * TimeSpan.TicksPerSecond);
    }

    static string DataName(string spec)
    {
        var name = Path.GetFileName(spec.TrimEnd('/', '\\')).Split(':')[0];
        return string.IsNullOrEmpty(name) ? "data" : name;
    }

    /// <summary>The model: the weights' (<see cref="ModelForData.FromWeights"/>) or the named model for the data, at --image-size.</summary>
    static XceptionConfig ModelConfig(Args a, string modelName, IDataSource source)
    {
        XceptionConfig config;
        if (a.String("weights") is { } w)
        {
            try { config = ModelForData.FromWeights(w, source.Classes, a.Flag("new-head")); }
            catch (ClassCountException e) { throw new XceptionException($"{e.Message} (--new-head starts a fresh classifier for the data's classes)", e); }
        }
        else
        {
            if (a.Flag("new-head")) throw new UsageException("--new-head needs --weights: the file whose base it keeps");
            config = ModelForData.Config(modelName, source);
        }
        if (a.String("image-size") is not null) config = config with { ImageSize = a.Int("image-size", 0, 5, 8192) };
        return config.Validate();
    }

    /// <summary>The epochs of a step schedule: finite, non-negative, increasing.</summary>
    static double[] StepBoundaries(string text)
    {
        var steps = text.Split(',').Select(x =>
            double.TryParse(x, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var v) && double.IsFinite(v) && v >= 0
                ? v : throw new UsageException($"--lr-steps: '{x}' is not a finite number of epochs >= 0")).ToArray();
        for (int i = 1; i < steps.Length; i++)
            if (steps[i] <= steps[i - 1]) throw new UsageException($"--lr-steps must increase, got '{text}'");
        return steps;
    }

    static TrainSettings Settings(Args a, TrainingRecipe? recipe, int seed)
    {
        var opt = recipe?.Optimizer ?? new OptimizerSettings { Kind = OptimizerKind.Sgd, Momentum = 0.9f };
        if (a.String("optimizer") is { } o)
            opt = opt with { Kind = o.ToLowerInvariant() switch
            {
                "sgd" => OptimizerKind.Sgd,
                "rmsprop" => OptimizerKind.RmsProp,
                _ => throw new UsageException($"--optimizer must be sgd or rmsprop, got '{o}'"),
            } };
        opt = opt with
        {
            Momentum = (float)SgdOptions.Momentum(a, opt.Momentum),
            Nesterov = a.Flag("nesterov") || opt.Nesterov,
            Rho = (float)a.Double("rho", opt.Rho, 0, 0.9999),
            Epsilon = (float)a.Double("epsilon", opt.Epsilon, 1e-12, 10),
            WeightDecay = (float)SgdOptions.WeightDecay(a, opt.WeightDecay),
        };
        var schedule = recipe?.Schedule ?? new LearningRateSchedule { BaseRate = 0.05, Decay = DecayKind.Cosine };
        schedule = schedule with { BaseRate = SgdOptions.LearningRate(a, schedule.BaseRate), WarmupSteps = a.Int("warmup-steps", 0, 0) };
        if (a.String("lr-schedule") is { } s)
        {
            schedule = s.ToLowerInvariant() switch
            {
                "constant" => schedule with { Decay = DecayKind.None },
                "cosine" => schedule with { Decay = DecayKind.Cosine },
                "exponential" when a.String("lr-decay-samples") is not null => schedule with { Decay = DecayKind.ExponentialSamples, Every = a.Double("lr-decay-samples", 1, 1) },
                "exponential" => schedule with { Decay = DecayKind.ExponentialEpochs, Every = a.Double("lr-decay-epochs", 2, 1e-6) },
                "step" => schedule with { Decay = DecayKind.Step, Boundaries = StepBoundaries(a.String("lr-steps") ?? throw new UsageException("--lr-schedule step needs --lr-steps e1,e2,...")) },
                _ => throw new UsageException($"--lr-schedule must be constant, exponential, step or cosine, got '{s}'"),
            };
        }
        schedule = schedule with { Rate = a.Double("lr-decay", schedule.Rate, 1e-6, 1) };
        return new TrainSettings
        {
            Epochs = a.Int("epochs", 3, 1, 100000),
            MaxSteps = a.String("steps") is null ? null : a.Int("steps", 0, 1),
            Batch = a.Int("batch", 32, 1, 65536),
            Seed = seed,
            LabelSmoothing = (float)a.Double("label-smoothing", 0, 0, 0.99),
            Optimizer = opt,
            Schedule = schedule,
            CheckpointEvery = a.Int("checkpoint-every", 0, 0),
            KeepCheckpoints = a.Int("keep", 3, 1, 1000),
        };
    }
}
