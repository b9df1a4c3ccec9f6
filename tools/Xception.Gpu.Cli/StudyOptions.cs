using System.Globalization;
using Xception.Gpu.Models;
using Xception.Gpu.Ops;

namespace Xception.Gpu.Cli;

/// <summary>What `xception study` was asked to do (<see cref="StudyCommand"/> fills it from the command line).</summary>
sealed record StudyOptions
{
    public required string Study { get; init; }
    public required string Data { get; init; }
    public required string Model { get; init; }
    public int? ImageSize { get; init; }
    public int? TrainImages { get; init; }
    public int TestImages { get; init; }
    /// <summary>The segments study's values (0: depthwise); empty for the other studies.</summary>
    public int[] Segments { get; init; } = [];
    /// <summary>Steps per run, or null when <see cref="Epochs"/> gives them.</summary>
    public long? Steps { get; init; }
    public int? Epochs { get; init; }
    public int EvalEvery { get; init; }
    public int Seeds { get; init; }
    public int Batch { get; init; }
    public double LearningRate { get; init; }
    /// <summary>Cosine decay to 0 over the run; else a constant rate.</summary>
    public bool Cosine { get; init; }
    public double Momentum { get; init; }
    public double WeightDecay { get; init; }
    public bool Augment { get; init; }
    public string? Out { get; init; }
    public string Device { get; init; } = "auto";
    public int? CpuThreads { get; init; }

    /// <summary>
    /// The settings a study folder keeps (study.json) and a continued study must repeat, by option name; the device
    /// and its threads may change between sessions. <paramref name="steps"/> is the resolved steps per run.
    /// </summary>
    public SortedDictionary<string, string> Stored(long steps) => new(StringComparer.Ordinal)
    {
        ["study"] = Study,
        ["--data"] = Data,
        ["--model"] = Model,
        ["--image-size"] = ImageSize?.ToString(CultureInfo.InvariantCulture) ?? "default",
        ["--train-images"] = TrainImages?.ToString(CultureInfo.InvariantCulture) ?? "all",
        ["--test-images"] = TestImages.ToString(CultureInfo.InvariantCulture),
        ["--segments"] = string.Join(",", Segments),
        ["--steps"] = steps.ToString(CultureInfo.InvariantCulture),
        ["--eval-every"] = EvalEvery.ToString(CultureInfo.InvariantCulture),
        ["--seeds"] = Seeds.ToString(CultureInfo.InvariantCulture),
        ["--batch"] = Batch.ToString(CultureInfo.InvariantCulture),
        ["--lr"] = LearningRate.ToString("R", CultureInfo.InvariantCulture),
        ["--lr-schedule"] = Cosine ? "cosine" : "constant",
        ["--momentum"] = Momentum.ToString("R", CultureInfo.InvariantCulture),
        ["--weight-decay"] = WeightDecay.ToString("R", CultureInfo.InvariantCulture),
        ["--no-augment"] = Augment ? "off" : "on",
    };
}

/// <summary>One variant of a study: its name (folder and legend) and its model.</summary>
sealed record StudyVariant(string Name, XceptionConfig Config);

static class StudyVariants
{
    /// <summary>The variants of <paramref name="o"/>'s study on the base model; an invalid segment count is a usage error naming the valid ones.</summary>
    public static IReadOnlyList<StudyVariant> Of(StudyOptions o, XceptionConfig baseConfig) => o.Study switch
    {
        "residual" => [new("residual", baseConfig with { Residual = true }), new("no-residual", baseConfig with { Residual = false })],
        "activation" => [new("none", baseConfig with { SeparableActivation = ActivationKind.None }),
                         new("relu", baseConfig with { SeparableActivation = ActivationKind.Relu }),
                         new("elu", baseConfig with { SeparableActivation = ActivationKind.Elu })],
        "segments" => o.Segments.Select(k => new StudyVariant(k == 0 ? "depthwise" : $"segments-{k}", Segmented(baseConfig, k, o.Model))).ToList(),
        _ => throw new UsageException($"unknown study '{o.Study}'; studies: residual, activation, segments"),
    };

    static XceptionConfig Segmented(XceptionConfig c, int k, string model)
    {
        var inputs = c.SeparableInputs().Distinct().ToList();
        if (k == 0 || inputs.All(ch => ch % k == 0)) return c with { Segments = k };
        int gcd = inputs.Aggregate(0, (g, ch) => (int)System.Numerics.BigInteger.GreatestCommonDivisor(g, ch));
        var valid = Enumerable.Range(1, gcd).Where(d => gcd % d == 0);
        throw new UsageException($"--segments {k} does not divide the input channels of every separable layer of {model} " +
                                 $"({string.Join(", ", inputs)}); valid values: {string.Join(", ", valid)}, and 0 (depthwise)");
    }
}
