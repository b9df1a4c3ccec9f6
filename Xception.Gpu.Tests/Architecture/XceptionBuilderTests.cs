using Xception.Gpu.Graph;
using Xception.Gpu.Architecture;
using Xception.Gpu.Ops;
using Xunit;

namespace Xception.Gpu.Tests.Architecture;

public class XceptionBuilderTests
{
    [Fact]
    public void ParameterCountsAreKeras()
    {
        using var m = XceptionBuilder.Build();
        Assert.Equal(22_910_480, m.TotalParams);
        Assert.Equal(22_855_952, m.TrainableParams);
        Assert.Equal(54_528, m.TotalParams - m.TrainableParams);
        using var notop = XceptionBuilder.Build(new XceptionConfig { IncludeTop = false, Pooling = GlobalPooling.Avg });
        Assert.Equal(20_861_480, notop.TotalParams); // Keras' Xception(include_top=False)
        var text = Summary.Render(m);
        Assert.Contains("Total params: 22,910,480", text);
        Assert.Contains("Trainable params: 22,855,952", text);
        Assert.Contains("Non-trainable params: 54,528", text);
    }

    [Theory]
    [InlineData(71, 3)]
    [InlineData(100, 3)]
    [InlineData(150, 5)]
    [InlineData(299, 10)]
    public void OutputShapesFollowTheInputSize(int size, int exit)
    {
        using var m = XceptionBuilder.Build(new XceptionConfig { ImageSize = size, Classes = 17 });
        Assert.Equal(new[] { exit, exit, 2048 }, m["block14_sepconv2_act"].OutputShape);
        Assert.Equal(new[] { 17 }, m.Output.OutputShape);
        Assert.Equal("predictions", m.Output.Name);
        using var pooled = XceptionBuilder.Build(new XceptionConfig { ImageSize = size, IncludeTop = false, Pooling = GlobalPooling.Max });
        Assert.Equal(new[] { 2048 }, pooled.Output.OutputShape);
        using var none = XceptionBuilder.Build(new XceptionConfig { ImageSize = size, IncludeTop = false });
        Assert.Equal(new[] { exit, exit, 2048 }, none.Output.OutputShape);
    }

    [Fact]
    public void KerasNamesAndTheFourShortcuts()
    {
        using var m = XceptionBuilder.Build();
        var names = m.Layers.Select(l => l.Name).ToList();
        Assert.Equal(134, names.Count); // Keras' len(model.layers): 134 with the top, 132 without
        foreach (var n in new[] { "block1_conv1", "block1_conv1_bn", "block1_conv1_act", "block2_sepconv2_act", "block2_pool",
                     "block5_sepconv1_act", "block12_sepconv3_bn", "block13_pool", "block14_sepconv2_act", "avg_pool", "predictions" })
            Assert.Contains(n, names);
        Assert.Equal(new[] { "conv2d_1", "conv2d_2", "conv2d_3", "conv2d_4" }, names.Where(n => n.StartsWith("conv2d_")));
        Assert.Equal(new[] { 128, 256, 728, 1024 }, m.Layers.Where(l => l.Name.StartsWith("conv2d_")).Select(l => l.OutputShape[2]));
        Assert.Equal(12, names.Count(n => n.StartsWith("add_")));
        Assert.DoesNotContain("block2_sepconv1_act", names); // block 2 starts without a ReLU
    }

    [Fact]
    public void AblationsChangeTheGraphAsThePaperDescribes()
    {
        using var plain = XceptionBuilder.Build(new XceptionConfig { Residual = false });
        Assert.DoesNotContain(plain.Layers, l => l.Name.StartsWith("add_") || l.Name.StartsWith("conv2d_"));
        using var elu = XceptionBuilder.Build(new XceptionConfig { SeparableActivation = ActivationKind.Elu });
        Assert.Equal(22_910_480, elu.TotalParams); // an activation adds no weights
        // Spatial part on k segments: 9 C^2 / k weights instead of 9 C per separable convolution.
        using var seg = XceptionBuilder.Build(new XceptionConfig { Segments = 8 });
        int[] inputs = [64, 128, 128, 256, 256, 728, .. Enumerable.Repeat(728, 24), 728, 728, 1024, 1536];
        Assert.Equal(inputs.Sum(c => 9L * c * c / 8),
            seg.Layers.OfType<Gpu.Graph.Layers.SeparableConv2DLayer>().Sum(l => (long)l.Parameters[0].Length));
        Assert.Equal("spatial_kernel", seg["block3_sepconv1"].Parameters[0].Name);
        using var shallow = XceptionBuilder.Build(new XceptionConfig { MiddleBlocks = 0 });
        Assert.Equal("block5_sepconv1", shallow.Layers.First(l => l.Name.EndsWith("_sepconv1") && l.Name != "block2_sepconv1" && l.Name != "block3_sepconv1" && l.Name != "block4_sepconv1").Name);
    }

    [Theory]
    [InlineData(70, "image size must be at least 71 (Keras' minimum for Xception), got 70")]
    public void InvalidConfigurationEchoesTheValue(int size, string message)
    {
        var e = Assert.Throws<ModelConfigException>(() => XceptionBuilder.Build(new XceptionConfig { ImageSize = size }));
        Assert.Equal("invalid Xception configuration: " + message, e.Message);
        e = Assert.Throws<ModelConfigException>(() => XceptionBuilder.Build(new XceptionConfig { Segments = 3 }));
        Assert.Contains("segments 3 must divide the input channels of every separable convolution", e.Message);
        Assert.EndsWith("it does not divide 64, 128, 256, 728, 1024", e.Message);
    }

    [Theory]
    [InlineData(Backends.Cpu)]
    [InlineData(Backends.Cuda)]
    [InlineData(Backends.OpenCl)]
    public void FullModelForwardAt71MatchesTheFloat64Reference(string backend)
    {
        var d = Backends.Get(backend);
        using var m = XceptionBuilder.Build(new XceptionConfig { ImageSize = 71, Classes = 10 });
        ModelFixtures.Randomize(m, 5);
        m.Bind(d);
        int batch = 2;
        var x = TestData.Uniform(batch * 71 * 71 * 3, 6);
        using var tx = Tensor.From(d, x, batch, 71, 71, 3);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var y = m.Executor(batch, training: false).Forward(tx).ToArray();
        var seconds = sw.Elapsed.TotalSeconds;
        var want = m.ReferenceForward(TestData.D(x), batch);
        // 36 layers of float32 sums (K up to 9 * 2048): the error compounds to a few 1e-6 relative;
        // 1e-4 is Keras-equivalence's bar.
        Check.Close("xception logits at 71x71", y, want, 1e-4);
        TestContext.Current.SendDiagnosticMessage($"forward of 2 images at 71x71 on {d.Id}: {seconds:F2} s");
        // Running again reuses the planned buffers and gives the same answer bit for bit.
        Assert.Equal(y, m.Executor(batch, training: false).Forward(tx).ToArray());
        m.Dispose();
    }
}
