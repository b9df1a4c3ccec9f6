using Xception.Gpu.Data;
using Xception.Gpu.Graph;
using Xception.Gpu.IO;
using Xception.Gpu.Architecture;
using Xception.Gpu.Training;
using Xunit;

namespace Xception.Gpu.Tests.Training;

/// <summary>README's "Fine-tuning from C#" example, line for line, on tiny data (a few steps per phase).</summary>
public class FineTuneExampleTests
{
    [Fact]
    public void TheReadmeFineTuningExampleRuns()
    {
        using var tmp = new Xception.Gpu.Tests.IO.TempDir();
        // A pretrained file for the example to start from: the small model with 3 classes, saved untrained.
        string pretrained = tmp["pretrained.safetensors"];
        using (var m = XceptionBuilder.Build(XceptionConfig.Mini(32, 3, 3)))
        {
            m.Initialize(1);
            ModelWeights.Save(m, XceptionConfig.Mini(32, 3, 3), pretrained);
        }
        var device = Backends.Get(Backends.Cpu);
        string dataSpec = "synthetic:60", saveTo = tmp["fine-tuned.safetensors"];
        int steps = 2;
        var before = Snapshot(pretrained);

        // --- README example starts (device, dataSpec, pretrained, steps and saveTo as above) ---
        var data = DataSources.Open(dataSpec).Train;                 // any IDataSource
        var config = ModelWeights.ConfigOf(pretrained, XceptionConfig.Mini()) with { IncludeTop = true, Classes = data.Classes };
        using var model = XceptionBuilder.Build(config);
        var loaded = ModelWeights.Load(model, pretrained, new WeightsLoadOptions { NewHead = true, Seed = 0 });
        Console.WriteLine($"loaded {loaded.Loaded.Count} layers; started fresh: {string.Join(", ", loaded.Fresh)}");
        model.Bind(device);
        var split = Split.Make(data.Count, 0.1, seed: 0);
        var batches = DataBinding.Bind(data, split, batch: 8, config.ImageSize, config.InputChannels, Augment.Default, seed: 0, strict: false);

        // Phase 1: train the new classifier on the frozen base (frozen batch norm runs in inference mode).
        model.FreezeBase();
        new Trainer(model, config, new TrainSettings
        {
            Epochs = 1, MaxSteps = steps, Batch = 8,
            Optimizer = new OptimizerSettings { Kind = OptimizerKind.Sgd, Momentum = 0.9f },
            Schedule = new LearningRateSchedule { BaseRate = 1e-2, Decay = DecayKind.None },
        }).Run(batches);

        // Phase 2: unfreeze, keep every batch norm in inference mode, fine-tune everything with a small rate.
        model.Unfreeze();
        model.BatchNormMode = BatchNormMode.Inference;
        new Trainer(model, config, new TrainSettings
        {
            Epochs = 1, MaxSteps = steps, Batch = 8,
            Optimizer = new OptimizerSettings { Kind = OptimizerKind.Sgd, Momentum = 0.9f },
            Schedule = new LearningRateSchedule { BaseRate = 1e-5, Decay = DecayKind.None },
        }).Run(batches);
        ModelWeights.Save(model, config, saveTo);
        // --- README example ends ---

        Assert.Equal(["predictions"], loaded.Fresh);
        var after = Snapshot(saveTo);
        Assert.Equal(data.Classes, after["predictions/bias"].Length); // 10 classes on a base saved with 3
        Assert.NotEqual(before["block1_conv1/kernel"], after["block1_conv1/kernel"]);           // phase 2 trained the base
        Assert.Equal(before["block1_conv1_bn/moving_mean"], after["block1_conv1_bn/moving_mean"]); // never in training mode
    }

    static Dictionary<string, float[]> Snapshot(string path) =>
        SafeTensors.Read(path).Tensors.ToDictionary(t => t.Name, t => t.Data);
}
