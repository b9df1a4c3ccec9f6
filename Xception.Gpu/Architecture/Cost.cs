using Xception.Gpu.Graph;
using Xception.Gpu.Graph.Layers;

namespace Xception.Gpu.Architecture;

/// <summary>
/// The work of a forward pass, counted from the layer shapes: multiply-adds per image of the convolutions and
/// the classifier, which are nearly all of it (batch norm, activations, adds and pooling are left out, as the
/// paper and Keras-era counts leave them out). Keras' Xception at 299 x 299 comes to about 8.4 G.
/// </summary>
public static class Cost
{
    /// <summary>
    /// Multiply-adds per image:
    /// a convolution H_out * W_out * K * K * (C_in / groups) * C_out; a separable convolution its spatial part
    /// (depthwise H_out * W_out * K * K * C, or grouped into k segments H_out * W_out * K * K * (C / k) * C) plus
    /// its pointwise part H_out * W_out * C * F; a dense layer C_in * units.
    /// </summary>
    public static long MultiplyAdds(Model model) => model.Layers.Sum(MultiplyAdds);

    /// <summary>One layer's multiply-adds per image (0 for a layer without a kernel).</summary>
    public static long MultiplyAdds(Layer layer)
    {
        long positions = layer.OutputShape.Length == 3 ? (long)layer.OutputShape[0] * layer.OutputShape[1] : 1;
        return layer switch
        {
            Conv2DLayer c => positions * c.Kernel * c.Kernel * (c.Inputs[0].OutputShape[2] / c.Groups) * c.Filters,
            SeparableConv2DLayer s => positions * SeparablePerPosition(s),
            DenseLayer d => (long)d.Inputs[0].OutputShape[0] * d.Units,
            _ => 0,
        };
    }

    static long SeparablePerPosition(SeparableConv2DLayer s)
    {
        long c = s.Inputs[0].OutputShape[2];
        long perChannel = s.Segments == 0 ? 1 : c / s.Segments; // input channels each output channel sees
        return s.Kernel * s.Kernel * perChannel * c + c * s.Filters;
    }
}
