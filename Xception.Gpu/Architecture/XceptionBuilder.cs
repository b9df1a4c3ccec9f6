using Xception.Gpu.Graph;
using Xception.Gpu.Graph.Layers;
using Xception.Gpu.Ops;

namespace Xception.Gpu.Architecture;

/// <summary>
/// Builds Xception as Figure 5 of the paper draws it (entry, middle, exit flow) with Keras' layer names.
/// Keras leaves the four shortcut convolutions and their batch norms unnamed; they get the names of the
/// official weight file (conv2d_1..4, batch_normalization_1..4), and the adds add_1..add_N.
/// </summary>
public sealed class XceptionBuilder
{
    readonly XceptionConfig c;
    readonly XceptionPlan plan;
    readonly List<Layer> layers = new();
    int shortcuts, adds;

    XceptionBuilder(XceptionConfig config)
    {
        c = config.Validate();
        plan = XceptionPlan.Of(c);
    }

    /// <summary>The model of a configuration (Keras' Xception by default), with zero weights: see <see cref="Model.Initialize(int)"/>.</summary>
    public static Model Build(XceptionConfig? config = null)
    {
        var b = new XceptionBuilder(config ?? new XceptionConfig());
        return new Model("xception", b.Graph());
    }

    List<Layer> Graph()
    {
        var x = Then(new InputLayer("input_1", [c.ImageSize, c.ImageSize, c.InputChannels]));

        // Entry flow: block 1's two convolutions, then blocks that halve the size
        foreach (var conv in plan.Stem) x = ConvBnRelu(x, conv);
        foreach (var block in plan.Entry) x = Block(x, block);

        // Middle flow: x + 3 x [ReLU, SepConv 728, BN]
        foreach (var block in plan.Middle) x = Block(x, block);

        // Exit flow: one more halving block, then two separable convolutions
        foreach (var block in plan.Exit) x = Block(x, block);

        if (c.IncludeTop)
        {
            x = Then(new GlobalPoolLayer("avg_pool", x, max: false));
            if (c.Dropout > 0) x = Then(new DropoutLayer("dropout", x, c.Dropout));
            Then(new DenseLayer("predictions", x, c.Classes));
        }
        else if (c.Pooling == GlobalPooling.Avg) Then(new GlobalPoolLayer("avg_pool", x, max: false));
        else if (c.Pooling == GlobalPooling.Max) Then(new GlobalPoolLayer("max_pool", x, max: true));
        return layers;
    }

    Layer Block(Layer x, XceptionBlock b) => b.Kind switch
    {
        BlockKind.Downsampling => DownsamplingBlock(x, b),
        BlockKind.Middle => MiddleBlock(x, b),
        BlockKind.Final => FinalBlock(x, b),
        _ => throw new ArgumentOutOfRangeException(nameof(b), b.Kind, "not a block of Figure 5"),
    };

    /// <summary>
    /// Blocks 2-4 and 13: [ReLU] SepConv(w1) BN ReLU SepConv(w2) BN MaxPool, plus a strided 1x1 shortcut to w2.
    /// The shortcut is created first, as Keras does, so the layer order (and the shortcuts' numbers) are Keras'.
    /// </summary>
    Layer DownsamplingBlock(Layer x, XceptionBlock b)
    {
        var shortcut = Shortcut(x, b.Widths[1]);
        var y = b.ReluFirst ? ReluSepBn(x, $"{b.Name}_sepconv1", b.Widths[0]) : SepBn(x, $"{b.Name}_sepconv1", b.Widths[0]);
        y = ReluSepBn(y, $"{b.Name}_sepconv2", b.Widths[1]);
        y = Then(new MaxPoolLayer($"{b.Name}_pool", y, XceptionBlock.Pool, XceptionBlock.PoolStride, XceptionBlock.PoolPadding));
        return shortcut is null ? y : Residual(y, shortcut);
    }

    /// <summary>The middle flow's block: [ReLU SepConv BN] per width, added to the block's input.</summary>
    Layer MiddleBlock(Layer x, XceptionBlock b)
    {
        var y = x;
        for (int j = 0; j < b.Widths.Count; j++) y = ReluSepBn(y, $"{b.Name}_sepconv{j + 1}", b.Widths[j]);
        return Residual(y, x);
    }

    /// <summary>Block 14: [SepConv BN ReLU] per width.</summary>
    Layer FinalBlock(Layer x, XceptionBlock b)
    {
        for (int j = 0; j < b.Widths.Count; j++) x = SepBnRelu(x, $"{b.Name}_sepconv{j + 1}", b.Widths[j]);
        return x;
    }

    Layer ConvBnRelu(Layer x, StemConv conv)
    {
        x = Then(new Conv2DLayer(conv.Name, x, conv.Filters, conv.Kernel, conv.Stride, conv.Padding));
        x = Then(new BatchNormLayer($"{conv.Name}_bn", x, momentum: c.BatchNormMomentum));
        return Then(new ActivationLayer($"{conv.Name}_act", x, ActivationKind.Relu));
    }

    Layer SepBn(Layer x, string name, int filters)
    {
        x = Then(new SeparableConv2DLayer(name, x, filters, between: c.SeparableActivation, segments: c.Segments));
        return Then(new BatchNormLayer($"{name}_bn", x, momentum: c.BatchNormMomentum));
    }

    Layer ReluSepBn(Layer x, string name, int filters) =>
        SepBn(Then(new ActivationLayer($"{name}_act", x, ActivationKind.Relu)), name, filters);

    Layer SepBnRelu(Layer x, string name, int filters) =>
        Then(new ActivationLayer($"{name}_act", SepBn(x, name, filters), ActivationKind.Relu));

    /// <summary>1x1 convolution and batch norm that shrink like the block's pool, or nothing when residuals are off.</summary>
    Layer? Shortcut(Layer x, int filters)
    {
        if (!c.Residual) return null;
        shortcuts++;
        var s = Then(new Conv2DLayer($"conv2d_{shortcuts}", x, filters, 1, XceptionBlock.PoolStride, XceptionBlock.PoolPadding));
        return Then(new BatchNormLayer($"batch_normalization_{shortcuts}", s, momentum: c.BatchNormMomentum));
    }

    Layer Residual(Layer x, Layer shortcut) => c.Residual ? Then(new AddLayer($"add_{++adds}", x, shortcut)) : x;

    /// <summary>Appends a layer to the graph and returns it, so each line reads as the next step of the figure.</summary>
    Layer Then(Layer l)
    {
        layers.Add(l);
        return l;
    }
}
