using System.Globalization;

namespace Xception.Gpu.Studies;

/// <summary>
/// What a study runs: one of <see cref="Names"/>, its data and model, how long each run trains and how. Every
/// variant and every seed trains with these settings; only the study's switch differs between variants.
/// </summary>
public sealed record StudySettings
{
    /// <summary>The studies: with and without residual connections (the paper's Figure 9), the activation between the
    /// depthwise and the pointwise convolution (Figure 10), and the number of segments of the spatial convolution.</summary>
    public static IReadOnlyList<string> Names { get; } = ["residual", "activation", "segments"];

    /// <summary>One of <see cref="Names"/>.</summary>
    public required string Study { get; init; }
    /// <summary>The data, as <see cref="Data.DataSources.Open"/> takes it.</summary>
    public required string Data { get; init; }
    /// <summary>The base model's name (<see cref="Architecture.ModelPresets"/>).</summary>
    public required string Model { get; init; }
    /// <summary>The input size, or null for the model's size for the data.</summary>
    public int? ImageSize { get; init; }
    /// <summary>Train on a fixed subset of this many images, or null for all.</summary>
    public int? TrainImages { get; init; }
    /// <summary>Evaluate on a fixed subset of this many test images.</summary>
    public int TestImages { get; init; } = 2000;
    /// <summary>The segments study's values (0: depthwise); empty for the other studies.</summary>
    public int[] Segments { get; init; } = [];
    /// <summary>Steps per run, or null when <see cref="Epochs"/> gives them.</summary>
    public long? Steps { get; init; }
    /// <summary>Passes over the training images per run, when <see cref="Steps"/> is null.</summary>
    public int? Epochs { get; init; }
    /// <summary>Steps between evaluations (and checkpoints).</summary>
    public int EvalEvery { get; init; } = 100;
    /// <summary>Runs per variant, seeds 0 to Seeds - 1.</summary>
    public int Seeds { get; init; } = 1;
    /// <summary>Images per step.</summary>
    public int Batch { get; init; } = 32;
    /// <summary>The SGD learning rate at the start.</summary>
    public double LearningRate { get; init; } = 0.05;
    /// <summary>Cosine decay to 0 over the run; else a constant rate.</summary>
    public bool Cosine { get; init; } = true;
    /// <summary>SGD momentum.</summary>
    public double Momentum { get; init; } = 0.9;
    /// <summary>L2 weight decay.</summary>
    public double WeightDecay { get; init; }
    /// <summary>Random crop-and-scale and flips of the training images.</summary>
    public bool Augment { get; init; } = true;

    /// <summary>
    /// The settings a study folder keeps (study.json) and a continued study must repeat, by name. The device and
    /// its threads may change between sessions; the seeds may grow or shrink. <paramref name="steps"/> is the
    /// resolved steps per run.
    /// </summary>
    public SortedDictionary<string, string> Stored(long steps) => new(StringComparer.Ordinal)
    {
        ["study"] = Study,
        ["data"] = Data,
        ["model"] = Model,
        ["image_size"] = ImageSize?.ToString(CultureInfo.InvariantCulture) ?? "default",
        ["train_images"] = TrainImages?.ToString(CultureInfo.InvariantCulture) ?? "all",
        ["test_images"] = TestImages.ToString(CultureInfo.InvariantCulture),
        ["segments"] = string.Join(",", Segments),
        ["steps"] = steps.ToString(CultureInfo.InvariantCulture),
        ["eval_every"] = EvalEvery.ToString(CultureInfo.InvariantCulture),
        ["seeds"] = Seeds.ToString(CultureInfo.InvariantCulture),
        ["batch"] = Batch.ToString(CultureInfo.InvariantCulture),
        ["lr"] = LearningRate.ToString("R", CultureInfo.InvariantCulture),
        ["lr_schedule"] = Cosine ? "cosine" : "constant",
        ["momentum"] = Momentum.ToString("R", CultureInfo.InvariantCulture),
        ["weight_decay"] = WeightDecay.ToString("R", CultureInfo.InvariantCulture),
        ["augment"] = Augment ? "on" : "off",
    };

    /// <summary>
    /// Settings as a study.json holds them. Files that name the settings by their command-line spelling (a key
    /// starting with two dashes, and augmentation stored inverted as "no-augment") are read as the same settings.
    /// </summary>
    public static Dictionary<string, string> Normalize(IReadOnlyDictionary<string, string> stored)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in stored)
        {
            if (!key.StartsWith("--", StringComparison.Ordinal)) { result[key] = value; continue; }
            string name = key[2..].Replace('-', '_');
            if (name == "no_augment") result["augment"] = value == "off" ? "on" : "off";
            else result[name] = value;
        }
        return result;
    }
}
