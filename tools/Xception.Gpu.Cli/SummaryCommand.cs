using System.CommandLine;
using Xception.Gpu.Architecture;

namespace Xception.Gpu.Cli;

static class SummaryCommand
{
    public static CliCommand Definition => new("summary", "print the model as Keras' model.summary() does", Run, """
        Prints the Xception graph as Keras' model.summary() does: each layer with its output shape,
        parameter count and inputs, then the totals. Defaults are Keras' (1000 classes, 299 x 299).
        """)
    {
        ModelOptions.Group,
    };

    static int Run(Args a)
    {
        using var model = XceptionBuilder.Build(ModelOptions.Config(a));
        Console.WriteLine(Summary.Render(model));
        return 0;
    }
}

/// <summary>The model-shape options of summary.</summary>
static class ModelOptions
{
    public static IEnumerable<Option> Group =>
    [
        Value("classes", "C", "classifier outputs (default 1000)"),
        Value("image-size", "S", "input size S x S (default 299, at least 71)"),
        Flag("no-top", "no classifier: the model ends at block14 (with --pooling: pooled)"),
        Choice("pooling", ["avg", "max", "none"], "with --no-top: global pooling of block14's output (default none)"),
        Value("middle-blocks", "B", "middle-flow blocks (default 8)"),
        Flag("no-residual", "the paper's ablation without residual connections (section 4.6)"),
        Choice("separable-activation", ["none", "relu", "elu"], "an activation between depthwise and pointwise (section 4.7; default none)"),
        Value("segments", "K", "channel segments of the spatial convolutions: 0 depthwise (default), 1 a regular 3x3 convolution, between them grouped"),
    ];

    public static XceptionConfig Config(Args a, XceptionConfig? start = null)
    {
        var c = start ?? new XceptionConfig();
        c = c with
        {
            Classes = a.Int("classes", c.Classes, 1, 1_000_000),
            ImageSize = a.Int("image-size", c.ImageSize, 71, 8192),
            MiddleBlocks = a.Int("middle-blocks", c.MiddleBlocks, 0, 64),
            Segments = a.Int("segments", c.Segments, 0, 4096),
            IncludeTop = !a.Flag("no-top") && c.IncludeTop,
            Residual = !a.Flag("no-residual") && c.Residual,
        };
        if (a.String("pooling") is { } p)
            c = c with { Pooling = p.ToLowerInvariant() switch
            {
                "avg" => GlobalPooling.Avg, "max" => GlobalPooling.Max, "none" => GlobalPooling.None,
                _ => throw new UsageException($"--pooling must be avg, max or none, got '{p}'"),
            } };
        if (a.String("separable-activation") is { } s)
            c = c with { SeparableActivation = s.ToLowerInvariant() switch
            {
                "none" => Ops.ActivationKind.None, "relu" => Ops.ActivationKind.Relu, "elu" => Ops.ActivationKind.Elu,
                _ => throw new UsageException($"--separable-activation must be none, relu or elu, got '{s}'"),
            } };
        return c.Validate();
    }
}
