using Xception.Gpu.Graph;
using Xception.Gpu.Graph.Layers;
using Xception.Gpu.Ops;

namespace Xception.Gpu.Models;

/// <summary>
/// Builds Xception as Figure 5 of the paper draws it (entry, middle, exit flow) with Keras' layer names.
/// Keras leaves the four shortcut convolutions and their batch norms unnamed; they get the names of the
/// official weight file (conv2d_1..4, batch_normalization_1..4), and the adds add_1..add_N.
/// </summary>
public sealed class XceptionBuilder
{
    readonly XceptionConfig c;
    readonly List<Layer> layers = new();
    int shortcuts, adds;

    XceptionBuilder(XceptionConfig config) => c = config.Validate();

    public static Model Build(XceptionConfig? config = null)
    {
        var b = new XceptionBuilder(config ?? new XceptionConfig());
        return new Model("xception", b.Graph());
    }

    List<Layer> Graph()
    {
        var x = Add(new InputLayer("input_1", [c.ImageSize, c.ImageSize, c.InputChannels]));

        // Entry flow
        x = ConvBnRelu(x, "block1_conv1", W(32), stride: c.EntryStride);
        x = ConvBnRelu(x, "block1_conv2", W(64), stride: 1);
        x = EntryBlock(x, "block2", W(128), reluFirst: false);
        x = EntryBlock(x, "block3", W(256), reluFirst: true);
        x = EntryBlock(x, "block4", W(728), reluFirst: true);

        // Middle flow: x + 3 x [ReLU, SepConv 728, BN]
        for (int i = 0; i < c.MiddleBlocks; i++)
        {
            string block = $"block{5 + i}";
            var y = x;
            for (int j = 1; j <= 3; j++) y = ReluSepBn(y, $"{block}_sepconv{j}", W(728));
            x = Residual(y, x);
        }

        // Exit flow
        string b13 = $"block{5 + c.MiddleBlocks}", b14 = $"block{6 + c.MiddleBlocks}";
        var shortcut = Shortcut(x, W(1024));
        x = ReluSepBn(x, $"{b13}_sepconv1", W(728));
        x = ReluSepBn(x, $"{b13}_sepconv2", W(1024));
        x = Add(new MaxPoolLayer($"{b13}_pool", x));
        if (shortcut is not null) x = Residual(x, shortcut);
        x = SepBnRelu(x, $"{b14}_sepconv1", W(1536));
        x = SepBnRelu(x, $"{b14}_sepconv2", W(2048));

        if (c.IncludeTop)
        {
            x = Add(new GlobalPoolLayer("avg_pool", x, max: false));
            if (c.Dropout > 0) x = Add(new DropoutLayer("dropout", x, c.Dropout));
            Add(new DenseLayer("predictions", x, c.Classes));
        }
        else if (c.Pooling == Pooling.Avg) Add(new GlobalPoolLayer("avg_pool", x, max: false));
        else if (c.Pooling == Pooling.Max) Add(new GlobalPoolLayer("max_pool", x, max: true));
        return layers;
    }

    /// <summary>Xception's width for a layer, scaled by the configuration's multiplier.</summary>
    int W(int baseWidth) => c.Channels(baseWidth);

    /// <summary>Blocks 2-4: [ReLU] SepConv BN ReLU SepConv BN MaxPool, plus a strided 1x1 shortcut.</summary>
    Layer EntryBlock(Layer x, string block, int filters, bool reluFirst)
    {
        var shortcut = Shortcut(x, filters);
        var y = reluFirst ? ReluSepBn(x, $"{block}_sepconv1", filters) : SepBn(x, $"{block}_sepconv1", filters);
        y = ReluSepBn(y, $"{block}_sepconv2", filters);
        y = Add(new MaxPoolLayer($"{block}_pool", y));
        return shortcut is null ? y : Residual(y, shortcut);
    }

    Layer ConvBnRelu(Layer x, string name, int filters, int stride)
    {
        x = Add(new Conv2DLayer(name, x, filters, 3, stride, Padding.Valid));
        x = Add(new BatchNormLayer($"{name}_bn", x, momentum: c.BatchNormMomentum));
        return Add(new ActivationLayer($"{name}_act", x, ActivationKind.Relu));
    }

    Layer SepBn(Layer x, string name, int filters)
    {
        x = Add(new SeparableConv2DLayer(name, x, filters, between: c.SeparableActivation, segments: c.Segments));
        return Add(new BatchNormLayer($"{name}_bn", x, momentum: c.BatchNormMomentum));
    }

    Layer ReluSepBn(Layer x, string name, int filters) =>
        SepBn(Add(new ActivationLayer($"{name}_act", x, ActivationKind.Relu)), name, filters);

    Layer SepBnRelu(Layer x, string name, int filters) =>
        Add(new ActivationLayer($"{name}_act", SepBn(x, name, filters), ActivationKind.Relu));

    /// <summary>1x1 stride-2 convolution and batch norm, or nothing when residuals are off.</summary>
    Layer? Shortcut(Layer x, int filters)
    {
        if (!c.Residual) return null;
        shortcuts++;
        var s = Add(new Conv2DLayer($"conv2d_{shortcuts}", x, filters, 1, 2, Padding.Same));
        return Add(new BatchNormLayer($"batch_normalization_{shortcuts}", s, momentum: c.BatchNormMomentum));
    }

    Layer Residual(Layer x, Layer shortcut) => c.Residual ? Add(new AddLayer($"add_{++adds}", x, shortcut)) : x;

    Layer Add(Layer l)
    {
        layers.Add(l);
        return l;
    }
}
