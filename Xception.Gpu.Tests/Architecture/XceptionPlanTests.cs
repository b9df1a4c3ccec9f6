using Xception.Gpu.Graph;
using Xception.Gpu.Graph.Layers;
using Xception.Gpu.Architecture;
using Xunit;

namespace Xception.Gpu.Tests.Architecture;

/// <summary>
/// The topology is written once (<see cref="XceptionPlan"/>): what the configuration's checks derive from it
/// must be what they computed before it existed, and what the builder makes of it.
/// </summary>
public class XceptionPlanTests
{
    // Closed formulas for the exit size and the separable convolutions' inputs, written without the plan: the
    // plan, which derives them by walking the topology, must agree with them.
    static int FormulaExitSize(XceptionConfig c)
    {
        int s = (c.ImageSize - 3) / c.EntryStride + 1 - 2;
        for (int i = 0; i < 4; i++) s = (s + 1) / 2;
        return s;
    }

    static IEnumerable<int> FormulaSeparableInputs(XceptionConfig c)
    {
        int[] entry = [64, 128, 128, 256, 256, 728];
        foreach (var w in entry) yield return c.Channels(w);
        if (c.MiddleBlocks > 0) yield return c.Channels(728);
        foreach (var w in new[] { 728, 728, 1024, 1536 }) yield return c.Channels(w);
    }

    public static TheoryData<string> Variants() => new(Configs.Keys);

    static readonly Dictionary<string, XceptionConfig> Configs = new()
    {
        ["default"] = new XceptionConfig(),
        ["mini"] = XceptionConfig.Mini(),
        ["mini-28-gray"] = XceptionConfig.Mini(28, 1, 10),
        ["middle-0"] = new XceptionConfig { MiddleBlocks = 0 },
        ["middle-4"] = new XceptionConfig { MiddleBlocks = 4 },
        ["middle-8"] = new XceptionConfig { MiddleBlocks = 8 },
        ["size-71"] = new XceptionConfig { ImageSize = 71 },
        ["size-72"] = new XceptionConfig { ImageSize = 72 },
        ["size-299"] = new XceptionConfig { ImageSize = 299 },
        ["segments-8"] = new XceptionConfig { Segments = 8, ImageSize = 72 },
        ["segments-4-mini"] = XceptionConfig.Mini() with { Segments = 4 },
        ["no-residual"] = new XceptionConfig { Residual = false, ImageSize = 71 },
        ["no-top"] = new XceptionConfig { IncludeTop = false, MiddleBlocks = 2, ImageSize = 100 },
        ["half-width"] = new XceptionConfig { Width = 0.5f, EntryStride = 1, ImageSize = 40, MiddleBlocks = 1 },
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public void DerivedSizesAndChannelsEqualTheClosedFormulasAndTheBuiltModel(string variant)
    {
        var c = Configs[variant];
        Assert.Equal(FormulaExitSize(c), c.ExitSize());
        Assert.Equal(FormulaSeparableInputs(c).Distinct(), c.SeparableInputs().Distinct());

        using var m = XceptionBuilder.Build(c);
        var seps = m.Layers.OfType<SeparableConv2DLayer>().ToList();
        Assert.Equal(seps.Select(l => l.Inputs[0].OutputShape[2]), c.SeparableInputs());
        var exitPool = m.Layers.OfType<MaxPoolLayer>().Last();
        Assert.Equal($"block{5 + c.MiddleBlocks}_pool", exitPool.Name);
        Assert.Equal(new[] { c.ExitSize(), c.ExitSize() }, exitPool.OutputShape[..2]);
        Assert.Equal(XceptionPlan.Of(c).Features, m["block" + (6 + c.MiddleBlocks) + "_sepconv2_act"].OutputShape[2]);
    }

    [Fact]
    public void ExitSizeEqualsTheClosedFormulaForEverySizeAndStride()
    {
        // Including sizes too small for the stem, which validation must keep refusing (exit size below 1).
        for (int stride = 1; stride <= 2; stride++)
            for (int size = 0; size <= 600; size++)
            {
                var c = new XceptionConfig { ImageSize = size, EntryStride = stride, Width = 0.25f };
                Assert.True(FormulaExitSize(c) == c.ExitSize(), $"size {size}, stride {stride}: formula {FormulaExitSize(c)}, derived {c.ExitSize()}");
            }
    }

    [Fact]
    public void SegmentsAreStillCheckedAgainstEverySeparableInput()
    {
        var e = Assert.Throws<ModelConfigException>(() => (XceptionConfig.Mini() with { Segments = 48 }).Validate());
        Assert.Equal("invalid Xception configuration: segments 48 must divide the input channels of every separable convolution " +
                     "(16, 32, 64, 184, 256, 384); it does not divide 16, 32, 64, 184, 256", e.Message);
    }

    [Fact]
    public void ThePlanIsFigureFive()
    {
        var p = XceptionPlan.Of(new XceptionConfig());
        Assert.Equal(new[] { ("block1_conv1", 32, 2), ("block1_conv2", 64, 1) }, p.Stem.Select(s => (s.Name, s.Filters, s.Stride)));
        Assert.Equal(new[] { "block2", "block3", "block4" }, p.Entry.Select(b => b.Name));
        Assert.Equal(new[] { false, true, true }, p.Entry.Select(b => b.ReluFirst));
        Assert.Equal(new[] { 128, 128, 256, 256, 728, 728 }, p.Entry.SelectMany(b => b.Widths));
        Assert.Equal(Enumerable.Range(5, 8).Select(i => $"block{i}"), p.Middle.Select(b => b.Name));
        Assert.All(p.Middle, b => Assert.Equal(new[] { 728, 728, 728 }, b.Widths));
        Assert.Equal(new[] { ("block13", BlockKind.Downsampling), ("block14", BlockKind.Final) }, p.Exit.Select(b => (b.Name, b.Kind)));
        Assert.Equal(new[] { 728, 1024, 1536, 2048 }, p.Exit.SelectMany(b => b.Widths));
        Assert.Equal(2048, p.Features);
    }

    static ParameterRole RoleOfKerasName(string name) => name switch
    {
        "kernel" or "depthwise_kernel" or "pointwise_kernel" or "spatial_kernel" => ParameterRole.Kernel,
        "bias" => ParameterRole.Bias,
        "gamma" => ParameterRole.Gamma,
        "beta" => ParameterRole.Beta,
        "moving_mean" => ParameterRole.MovingMean,
        "moving_variance" => ParameterRole.MovingVariance,
        _ => throw new InvalidOperationException($"no role for Keras weight '{name}'"),
    };

    [Fact]
    public void EveryParameterHasTheRoleItsKerasNameImplies()
    {
        using var m = XceptionBuilder.Build();
        using var seg = XceptionBuilder.Build(new XceptionConfig { Segments = 8, ImageSize = 71 });
        foreach (var p in m.Parameters.Concat(seg.Parameters))
        {
            Assert.Equal(RoleOfKerasName(p.Name), p.Role);
            Assert.Equal(!p.Name.StartsWith("moving_"), p.Trainable);
        }
        Assert.Contains(seg.Parameters, p => p.Name == "spatial_kernel");
        Assert.Equal(22_855_952, m.Parameters.Where(p => p.Trainable).Sum(p => (long)p.Length));
    }

    [Fact]
    public void InitializationFollowsTheRole()
    {
        using var m = XceptionBuilder.Build(XceptionConfig.Mini());
        m.Initialize(7);
        foreach (var p in m.Parameters)
            switch (p.Role)
            {
                case ParameterRole.Gamma or ParameterRole.MovingVariance: Assert.All(p.Host, v => Assert.Equal(1f, v)); break;
                case ParameterRole.Kernel: Assert.Contains(p.Host, v => v != 0f); break;
                default: Assert.All(p.Host, v => Assert.Equal(0f, v)); break;
            }
    }

    [Fact]
    public void InitialWeightsForASeedAreUnchanged()
    {
        // Every value Initialize(42) gives the full model, in parameter order, as recorded constants: a refactor
        // that reorders layers or parameters, or starts one differently, shows here.
        using var m = XceptionBuilder.Build();
        m.Initialize(42);
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        foreach (var p in m.Parameters) sha.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(p.Host.AsSpan()));
        Assert.Equal("CEF5D0CC0C47217D08BDBC3FAF41CDA6", Convert.ToHexString(sha.GetHashAndReset())[..32]);
    }
}
