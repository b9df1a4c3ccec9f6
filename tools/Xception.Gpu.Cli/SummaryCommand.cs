using Xception.Gpu.Models;

namespace Xception.Gpu.Cli;

static class SummaryCommand
{
    const string Help = """
        usage: xception summary [--classes C] [--image-size S] [--no-top] [--pooling avg|max|none]
                                [--middle-blocks B] [--no-residual] [--separable-activation none|relu|elu]
                                [--segments K]

        Prints the Xception graph as Keras' model.summary() does: each layer with its output shape,
        parameter count and inputs, then the totals. Defaults are Keras' (1000 classes, 299 x 299).
        """;

    public static int Run(string[] argv)
    {
        var a = new Args(argv, ModelOptions.Options, [.. ModelOptions.Flags, "help"], "summary");
        if (a.Flag("help")) { Console.WriteLine(Help); return 0; }
        if (a.Positional.Count > 0) throw new UsageException($"'summary' takes no positional arguments, got '{a.Positional[0]}'");
        using var model = XceptionBuilder.Build(ModelOptions.Config(a));
        Console.WriteLine(Summary.Render(model));
        return 0;
    }
}

/// <summary>The model-shape options shared by summary, predict and train.</summary>
static class ModelOptions
{
    public static readonly string[] Options = ["classes", "image-size", "pooling", "middle-blocks", "separable-activation", "segments"];
    public static readonly string[] Flags = ["no-top", "no-residual"];

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
                "avg" => Pooling.Avg, "max" => Pooling.Max, "none" => Pooling.None,
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
