using Xception.Gpu.Diagnostics;
using Xunit;

namespace Xception.Gpu.Tests.Diagnostics;

/// <summary>The benchmark's shape table, walked from the model's plan, has Keras' sizes (as Keras' model.summary() prints them: 149, 147, 74, 37, 19, 10).</summary>
public class XceptionShapesTests
{
    [Fact]
    public void ShapesAt299AreKerasLayerShapes()
    {
        var shapes = XceptionShapes.For(299, 8);
        string Row(string layer) => shapes.Single(s => s.Layer == layer).ToString();
        Assert.Equal("8x299x299x3->32 k3 s2", Row("block1_conv1"));
        Assert.Equal("8x149x149x32->64 k3", Row("block1_conv2"));
        Assert.Equal("8x147x147x64->128", Row("block2_sepconv1/pointwise"));
        Assert.Equal("8x147x147x128 k3", Row("block2_sepconv2/depthwise"));
        Assert.Equal("8x147x147x64->128 s2", Row("block2 shortcut"));
        Assert.Equal("8x147x147x128 k3 s2", Row("block2 pool"));
        Assert.Equal("8x74x74x128->256", Row("block3_sepconv1/pointwise"));
        Assert.Equal("8x37x37x256->728", Row("block4_sepconv1/pointwise"));
        Assert.Equal("8x19x19x728->728", Row("block5..12_sepconv1..3/pointwise"));
        Assert.Equal("8x19x19x728->1024", Row("block13_sepconv2/pointwise"));
        Assert.Equal("8x19x19x728->1024 s2", Row("block13 shortcut"));
        Assert.Equal("8x10x10x1024->1536", Row("block14_sepconv1/pointwise"));
        Assert.Equal("8x10x10x1536->2048", Row("block14_sepconv2/pointwise"));
        // Every separable convolution is timed as depthwise, pointwise and batch norm; the middle flow once.
        Assert.Equal(3 * 11, shapes.Count(s => s.Op is BenchOp.Depthwise or BenchOp.Pointwise or BenchOp.BatchNorm && s.Layer.Contains("sepconv")));
        Assert.Equal(4, shapes.Count(s => s.Op == BenchOp.Pool));
    }
}
