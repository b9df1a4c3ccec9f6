using Onnx;

namespace Xception.Gpu.IO.Onnx;

/// <summary>
/// Keras' (TensorFlow's) padding as ONNX attributes. 'same' puts the odd pixel after (bottom and right):
/// for a fixed input size the pads are written out, [top, left, bottom, right]; for a symbolic size
/// <c>auto_pad SAME_UPPER</c> says the same (ONNX puts the extra pad at the end). 'valid' pads nothing.
/// </summary>
internal static class OnnxPadding
{
    /// <summary>
    /// The padding attribute of a window op (Conv, MaxPool) of kernel <paramref name="kernel"/> and stride
    /// <paramref name="stride"/> reading an input of <paramref name="inputHW"/> (height, width), or of a
    /// symbolic size when null.
    /// </summary>
    public static AttributeProto For(string layer, Padding padding, int kernel, int stride, (int H, int W)? inputHW)
    {
        if (padding == Padding.Valid) return OnnxGraph.String("auto_pad", "VALID");
        if (inputHW is not { } hw) return OnnxGraph.String("auto_pad", "SAME_UPPER");
        var y = AxisGeometry.Of(layer, hw.H, kernel, stride, padding);
        var x = AxisGeometry.Of(layer, hw.W, kernel, stride, padding);
        return OnnxGraph.Ints("pads", y.PadBefore, x.PadBefore, After(y), After(x));
    }

    /// <summary>TensorFlow's total pad less the leading one: the odd pixel, when there is one, goes after.</summary>
    static int After(AxisGeometry g) => Math.Max((g.Out - 1) * g.Stride + g.Kernel - g.In, 0) - g.PadBefore;
}
