using Xception.Gpu.Graph;
using Xception.Gpu.Graph.Layers;
using Xception.Gpu.Architecture;
using Xception.Gpu.Ops;
using Xunit;

namespace Xception.Gpu.Tests.Studies;

/// <summary>
/// What the paper's studies compare besides accuracy: the work of each variant (<see cref="Cost"/>), and a start
/// from the same weights wherever the variants share parameters (<see cref="Model.InitializeByName"/>).
/// </summary>
public class StudyVariantTests
{
    /// <summary>A 7 x 5 x 4 input through a valid 3x3 convolution, a separable convolution and a classifier, counted by hand.</summary>
    static Model Small(int segments)
    {
        var input = new InputLayer("input", [7, 5, 4]);
        var conv = new Conv2DLayer("conv", input, filters: 6, kernel: 3);                      // out 5 x 3 x 6
        var sep = new SeparableConv2DLayer("sep", conv, filters: 9, segments: segments);      // 'same': out 5 x 3 x 9
        var pool = new GlobalPoolLayer("pool", sep, max: false);                             // 9
        var dense = new DenseLayer("dense", pool, 5);
        return new Model("small", [input, conv, sep, pool, dense]);
    }

    [Theory]
    // conv: 15 positions x 3*3*4*6 = 3,240; dense: 9*5 = 45.
    // depthwise: 15 x (3*3*1*6 + 6*9) = 15 x 108 = 1,620
    [InlineData(0, 3240 + 1620 + 45)]
    // 2 segments of 3 channels: 15 x (3*3*3*6 + 6*9) = 15 x 216 = 3,240
    [InlineData(2, 3240 + 3240 + 45)]
    // one segment (a regular 3x3 convolution): 15 x (3*3*6*6 + 6*9) = 15 x 378 = 5,670
    [InlineData(1, 3240 + 5670 + 45)]
    // 6 segments of 6 channels is depthwise again
    [InlineData(6, 3240 + 1620 + 45)]
    public void MultiplyAddsFollowTheLayerShapes(int segments, long expected)
    {
        using var m = Small(segments);
        Assert.Equal(expected, Cost.MultiplyAdds(m));
        Assert.Equal(0, Cost.MultiplyAdds(m["pool"]));
    }

    [Fact]
    public void XceptionAt299IsAbout8Point4GigaMultiplyAdds()
    {
        // The paper's model at 299: Keras' count of about 8.4 G, pointwise about 91% of it.
        using var m = XceptionBuilder.Build();
        long total = Cost.MultiplyAdds(m);
        Assert.InRange(total, 8.3e9, 8.5e9);
        long pointwise = m.Layers.OfType<SeparableConv2DLayer>().Sum(s => (long)s.OutputShape[0] * s.OutputShape[1] * s.Inputs[0].OutputShape[2] * s.Filters);
        Assert.InRange(pointwise / (double)total, 0.88, 0.94);
    }

    /// <summary>Each parameter by its layer and Keras name.</summary>
    static Dictionary<string, Parameter> ByName(Model m) =>
        m.Layers.SelectMany(l => l.Parameters.Select(p => (Key: $"{l.Name}/{p.Name}", p))).ToDictionary(x => x.Key, x => x.p);

    public static TheoryData<string, string> Pairs => new()
    {
        { "residual", "no-residual" },
        { "none", "elu" },
        { "none", "relu" },
        { "segments-1", "depthwise" },
        { "segments-4", "segments-2" },
    };

    static XceptionConfig Variant(string name)
    {
        var c = XceptionConfig.Mini(28, 1, 10);
        return name switch
        {
            "no-residual" => c with { Residual = false },
            "elu" => c with { SeparableActivation = ActivationKind.Elu },
            "relu" => c with { SeparableActivation = ActivationKind.Relu },
            "depthwise" => c with { Segments = 0 },
            _ when name.StartsWith("segments-") => c with { Segments = int.Parse(name["segments-".Length..]) },
            _ => c,
        };
    }

    [Theory]
    [MemberData(nameof(Pairs))]
    public void VariantsStartFromTheSameWeightsWhereTheyShareParameters(string a, string b)
    {
        using var ma = XceptionBuilder.Build(Variant(a));
        using var mb = XceptionBuilder.Build(Variant(b));
        ma.InitializeByName(5);
        mb.InitializeByName(5);
        var pa = ByName(ma);
        var pb = ByName(mb);
        int shared = 0;
        foreach (var (key, p) in pa)
        {
            if (!pb.TryGetValue(key, out var q) || !p.KerasShape.SequenceEqual(q.KerasShape)) continue;
            Assert.True(p.Host.AsSpan().SequenceEqual(q.Host), $"{key} starts differently in {a} and {b}");
            shared++;
        }
        // Only the switch's own parameters differ: the shortcuts' convolutions and batch norms, or the spatial
        // kernels of the separable layers; with the activation switch nothing does.
        var unshared = pa.Keys.Concat(pb.Keys).Distinct()
            .Where(k => !(pa.TryGetValue(k, out var p) && pb.TryGetValue(k, out var q) && p.KerasShape.SequenceEqual(q.KerasShape))).ToList();
        Func<string, bool> switchOwns = a switch
        {
            "residual" => k => k.StartsWith("conv2d_") || k.StartsWith("batch_normalization_"),
            "none" => _ => false,
            _ => k => k.EndsWith("/spatial_kernel") || k.EndsWith("/depthwise_kernel"),
        };
        Assert.All(unshared, k => Assert.True(switchOwns(k), $"{a} vs {b}: {k} is not shared"));
        if (a != "none") Assert.NotEmpty(unshared);
        Assert.True(shared > 100, $"{a} vs {b}: only {shared} shared parameters");
    }

    [Fact]
    public void InitializeByNameDependsOnTheSeedAndKeepsKerasDefaults()
    {
        using var m1 = XceptionBuilder.Build(Variant("none"));
        using var m2 = XceptionBuilder.Build(Variant("none"));
        m1.InitializeByName(0);
        m2.InitializeByName(1);
        var k1 = m1["block2_sepconv1"].Parameters.First(p => p.Name == "pointwise_kernel").Host;
        var k2 = m2["block2_sepconv1"].Parameters.First(p => p.Name == "pointwise_kernel").Host;
        Assert.False(k1.AsSpan().SequenceEqual(k2));
        // Two kernels of one model are not copies of each other.
        var other = m1["block3_sepconv1"].Parameters.First(p => p.Name == "pointwise_kernel").Host;
        Assert.NotEqual(k1[0], other[0]);
        // Glorot-uniform kernels, unit gammas.
        Assert.Contains(k1, v => v != 0);
        Assert.All(m1["block2_sepconv1_bn"].Parameters.First(p => p.Role == ParameterRole.Gamma).Host, v => Assert.Equal(1f, v));
    }
}
